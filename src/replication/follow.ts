/**
 * Publishing what other programs append to a mailbox's log outside this
 * process's commits (doveadm's flag changes, a force-resync's records) as
 * soon as this process notices them, rather than with the mailbox's next
 * commit. Noticed as change streams notice them (followLog: an inotify
 * watch on the log's directory, not persistent), for each mailbox from its
 * open (the hooks' afterOpen) or, for one the storage opened for its own
 * work, its first commit, until it is closed; when a transaction ends past
 * what the subject has, the log is published up to its end
 * (`publishNoticed`). Not through Mailbox.changes(): for Maildir and mbox a
 * subscriber there also has the mail files watched, and every commit's own
 * renames would resync the folder.
 *
 * This process's own commits are noticed too, after their write: by then
 * their afterCommit publish is under way (Publisher.has waits for it) and
 * the subject has them, so they cost no request and no lock. A mailbox is
 * let go when it closes (the hooks' beforeClose: its watch and log
 * descriptor go at once, after the publish under way), or when a watch or a
 * publish of it fails (its next commit follows it again). A mailbox not
 * open here is not followed: what others append to it goes with the next
 * publish of its log (an append noticed while it is open, a commit).
 */
import { AsyncResource } from "node:async_hooks";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { Subscription } from "rxjs";
import type { Mailbox } from "../api/mailbox.js";
import { isBefore } from "../index-io/load-state.js";
import { followLog } from "../log/follow.js";
import type { LogPosition } from "../log/types.js";
import { ReplicationError } from "../shared/errors.js";

/** One followed mailbox. */
interface Followed {
  subscription: Subscription | undefined;
  /** The end of the latest transaction not looked at yet. */
  noticed: LogPosition | undefined;
  /** The publish under way (undefined: none). */
  running: Promise<void> | undefined;
}

export interface LogFollowerOptions {
  /**
   * Whether the subject has everything up to `end` of the mailbox's log
   * already (after this process's own publishes under way settled).
   */
  has(mailbox: Mailbox, end: LogPosition): Promise<boolean>;
  /** Has the mailbox's log published up to its end (what the follower noticed is in it). */
  publishNoticed(mailbox: Mailbox): Promise<void>;
  /**
   * A publish or the log's watch failed (anything thrown that is not an
   * Error comes as a ReplicationError); the mailbox is not followed any
   * more. The next commit of the mailbox publishes what the follower would
   * have, or fails for the same reason (fenced, the stream unreachable),
   * and follows it again: nothing is lost by going on.
   */
  onError?(err: Error, mailbox: Mailbox): void;
}

export class LogFollower {
  /**
   * The async context the follower was made in, outside every log lock.
   * follow() runs in a commit's afterCommit, inside its lock scope: a watch
   * made there would call back in that scope, and a publish started from
   * it would share the lock (it is re-entrant per call chain) instead of
   * waiting for it.
   */
  private readonly scope = new AsyncResource("mailstore.replication.follow");
  private readonly followed = new Map<Mailbox, Followed>();

  constructor(private readonly options: LogFollowerOptions) {}

  /**
   * Follows `mailbox` until it is closed (nothing when it is followed
   * already, or closing: a commit ending while its close waits in
   * beforeClose must not follow it again, past the unfollow).
   */
  follow(mailbox: Mailbox): void {
    if (this.followed.has(mailbox) || mailbox.isClosing) return;
    const entry: Followed = { subscription: undefined, noticed: undefined, running: undefined };
    this.followed.set(mailbox, entry);
    // Subscribed in the follower's context: the watch's callbacks keep it.
    this.scope.runInAsyncScope(() => {
      // From the state's position and modseq: only what is past it is read, not the whole log.
      entry.subscription = followLog(mailbox.indexPrefix, mailbox.position, mailbox.state.logModseq).subscribe({
        next: (tx) => this.scope.runInAsyncScope(() => this.notice(mailbox, entry, tx.end)),
        error: (err: unknown) => {
          // The watch is gone already (a failed stream closes it).
          if (this.followed.get(mailbox) === entry) this.followed.delete(mailbox);
          this.report(err, mailbox);
        },
      });
    });
  }

  /**
   * Stops following `mailbox` (its watch and log descriptor go at once),
   * then waits for the publish under way for it: what was noticed before
   * is published while the mailbox is still open.
   */
  async unfollow(mailbox: Mailbox): Promise<void> {
    const entry = this.followed.get(mailbox);
    if (entry === undefined) return;
    this.followed.delete(mailbox);
    entry.subscription?.unsubscribe();
    await entry.running;
  }

  /** Stops following every mailbox (as unfollow). */
  async stop(): Promise<void> {
    await Promise.all([...this.followed.keys()].map((mailbox) => this.unfollow(mailbox)));
  }

  private notice(mailbox: Mailbox, entry: Followed, end: LogPosition): void {
    // Closed without the hooks' beforeClose (hooks shared with another storage's mailbox): let go now.
    if (mailbox.isClosed) {
      void this.unfollow(mailbox);
      return;
    }
    if (entry.noticed === undefined || isBefore(entry.noticed, end)) entry.noticed = end;
    if (entry.running) return;
    entry.running = this.publishWhileNoticed(mailbox, entry);
  }

  /** Tells onError, as an Error. */
  private report(err: unknown, mailbox: Mailbox): void {
    const error = err instanceof Error ? err : new ReplicationError(`following the log of ${mailbox.name}: ${String(err)}`, { path: mailbox.indexPrefix + ".log" });
    this.options.onError?.(error, mailbox);
  }

  /**
   * One publish at a time per mailbox; transactions noticed meanwhile are
   * looked at after it. Never rejects: a failure goes to onError.
   */
  private async publishWhileNoticed(mailbox: Mailbox, entry: Followed): Promise<void> {
    try {
      // The rest of a burst of transactions is read in this turn: one look covers them.
      await nextTurn();
      // Unfollowed meanwhile (the mailbox closing) still publishes what was noticed: close() waits for it.
      while (entry.noticed !== undefined && !mailbox.isClosed) {
        const end = entry.noticed;
        entry.noticed = undefined;
        if (!(await this.options.has(mailbox, end))) await this.options.publishNoticed(mailbox);
      }
    } catch (err) {
      // Fenced, the stream unreachable: its next commit publishes (or fails the same way) and follows again.
      if (this.followed.get(mailbox) === entry) this.followed.delete(mailbox);
      entry.subscription?.unsubscribe();
      this.report(err, mailbox);
    } finally {
      // At once, not a turn later: a transaction noticed from here on starts the next publish.
      entry.running = undefined;
    }
  }
}
