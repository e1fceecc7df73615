/**
 * Holding a mailbox's log lock from replication: a commit that appends
 * nothing (Mailbox.commitWith with no records). It takes the format's
 * commit locks and the log lock in Dovecot's order, catches the state up
 * to the log's end, and runs the commit hooks as any commit does; another
 * process (doveadm's expunge among them) waits until `fn` is done.
 */
import type { Mailbox } from "../api/mailbox.js";
import type { IndexMapState } from "../projections/state.js";

/** Runs `fn` under the mailbox's log lock with the state at the log's end (its position is `position(state)`). */
export async function underLogLock(mailbox: Mailbox, fn: (state: IndexMapState) => Promise<void>): Promise<void> {
  await mailbox.commitWith(async (state) => {
    await fn(state);
    return [];
  });
}
