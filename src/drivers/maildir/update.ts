/**
 * Mailbox.update for Maildir: dovecot-uidlist's header repeats UIDVALIDITY
 * (V) and the next UID (N), and a sync takes V from it (a uidlist that
 * disagrees with the index is refused, uidlist-open.ts). So a new
 * UIDVALIDITY or a higher next UID is written there too, before the log
 * records it, as Dovecot's `mailbox update --uid-validity/--min-next-uid`
 * leaves the file (observed with doveadm 2.3.19: `3 V777 N9 G…`).
 */
import type { LogRecord } from "../../log/types.js";
import type { IndexMapState } from "../../projections/state.js";
import type { MailboxHeaderUpdate } from "../driver.js";
import type { MaildirContext } from "./context.js";
import { openUidlist } from "./uidlist-open.js";

/**
 * Rewrites the uidlist header with the values the index will have. Runs
 * under the uidlist lock (the commit holds it, withCommitLocks).
 * @returns no records: the index's own header update says it all.
 */
export async function updateMaildirUidlist(ctx: MaildirContext, state: IndexMapState, update: MailboxHeaderUpdate): Promise<LogRecord[]> {
  return ctx.withUidlistLock(ctx.settings.saveLockTimeoutMs ?? 10_000, async () => {
    const list = await openUidlist(ctx, state);
    const uidValidity = update.uidValidity ?? list.header.uidValidity;
    const nextUid = Math.max(list.header.nextUid, update.nextUid ?? 0);
    if (uidValidity !== list.header.uidValidity || nextUid !== list.header.nextUid) {
      ctx.uidlist.recreate({ ...list.header, uidValidity, nextUid }, list.records);
    }
    return [];
  });
}
