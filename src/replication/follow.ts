/**
 * Publishing what other programs append to a mailbox's log outside this
 * process's commits (doveadm's flag changes, a force-resync's records) as
 * soon as this process notices them, rather than with the mailbox's next
 * commit. Noticed as change streams notice them (followLog: an inotify
 * watch on the log's directory, not persistent), for each mailbox the hooks
 * publish for, until it is closed; when a transaction ends past what the
 * subject has, the log is published up to its end (`publishNoticed`).
 * Not through Mailbox.changes(): for Maildir and mbox a subscriber there
 * also has the mail files watched, and every commit's own renames would
 * resync the folder.
 *
 * This process's own commits are noticed too, after their write: by then
 * their afterCommit publish is under way (Publisher.has waits for it) and
 * the subject has them, so they cost no request and no lock. A closed
 * mailbox is let go at the next transaction noticed (a watch and a log
 * descriptor stay until then), or when a publish of it fails (its next
 * commit follows it again).
 */
import { AsyncResource } from "node:async_hooks";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { Subscription } from "rxjs";
import type { Mailbox } from "../api/mailbox.js";
import { isBefore } from "../index-io/load-state.js";
import { followLog } from "../log/follow.js";
import type { LogPosition } from "../log/types.js";

/** One followed mailbox. */
interface Followed {
  subscription: Subscription | undefined;
  /** The end of the latest transaction not looked at yet. */
  noticed: LogPosition | undefined;
  running: boolean;
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
   * A publish that failed. The next commit of the mailbox publishes what
   * it would have, or fails for the same reason (fenced, the stream
   * unreachable): nothing is lost by going on.
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

  /** Follows `mailbox` until it is closed (nothing when it is followed already). */
  follow(mailbox: Mailbox): void {
    if (this.followed.has(mailbox)) return;
    const entry: Followed = { subscription: undefined, noticed: undefined, running: false };
    this.followed.set(mailbox, entry);
    // Subscribed in the follower's context: the watch's callbacks keep it.
    this.scope.runInAsyncScope(() => {
      entry.subscription = followLog(mailbox.indexPrefix, mailbox.position).subscribe({
        next: (tx) => this.scope.runInAsyncScope(() => this.notice(mailbox, entry, tx.end)),
        error: (err: unknown) => {
          this.followed.delete(mailbox);
          if (err instanceof Error) this.options.onError?.(err, mailbox);
        },
      });
    });
  }

  /** Stops following every mailbox. */
  stop(): void {
    for (const entry of this.followed.values()) entry.subscription?.unsubscribe();
    this.followed.clear();
  }

  private notice(mailbox: Mailbox, entry: Followed, end: LogPosition): void {
    if (mailbox.isClosed) {
      this.unfollow(mailbox, entry);
      return;
    }
    if (entry.noticed === undefined || isBefore(entry.noticed, end)) entry.noticed = end;
    if (entry.running) return;
    entry.running = true;
    void this.publishWhileNoticed(mailbox, entry).finally(() => (entry.running = false));
  }

  private unfollow(mailbox: Mailbox, entry: Followed): void {
    entry.subscription?.unsubscribe();
    if (this.followed.get(mailbox) === entry) this.followed.delete(mailbox);
  }

  /** One publish at a time per mailbox; transactions noticed meanwhile are looked at after it. */
  private async publishWhileNoticed(mailbox: Mailbox, entry: Followed): Promise<void> {
    // The rest of a burst of transactions is read in this turn: one look covers them.
    await nextTurn();
    while (entry.noticed !== undefined && this.followed.get(mailbox) === entry) {
      const end = entry.noticed;
      entry.noticed = undefined;
      try {
        if (!(await this.options.has(mailbox, end))) await this.options.publishNoticed(mailbox);
      } catch (err) {
        if (!(err instanceof Error)) throw err;
        // Closed meanwhile, fenced, the stream unreachable: its next commit publishes (or fails the same way) and follows again.
        this.unfollow(mailbox, entry);
        this.options.onError?.(err, mailbox);
      }
    }
  }
}
