// The deep import loads only Observable, not the whole rxjs bundle (~0.1 s at every CLI start).
import { Observable } from "rxjs/internal/Observable";
import { changeBatchOf, type ChangeBatch } from "./changes.js";
import type { MailboxBackend } from "../drivers/driver.js";
import { LockTimeoutError, MailstoreError } from "../shared/errors.js";
import { followLog } from "../log/follow.js";
import { watchMailFiles } from "./mail-file-watch.js";
import { TransactionLog, type FsyncMode } from "../log/log.js";
import type { LogPosition, LogTransaction } from "../log/types.js";
import { readLog } from "../log/view.js";
import { isBefore, loadState, readSince, stateAt } from "../index-io/load-state.js";
import { MailboxTransaction } from "./mailbox-transaction.js";
import { MailboxViewHandle } from "./mailbox-view.js";
import { applyTransaction, enterLogFile } from "../projections/apply.js";
import { writeCheckpoint } from "../index-io/checkpoint-file.js";
import { getHeader, position } from "../projections/read.js";
import type { IndexMapState } from "../projections/state.js";
import { ChangeFanout, SubscriberOverflowError } from "./subscribers.js";

export interface MailboxOptions {
  fsync?: FsyncMode;
  lockTimeoutMs?: number;
  /** Batches a slow subscriber may have waiting before it is cut off (default 10,000). */
  subscriberBufferMax?: number;
}

/** Dovecot's mail_index_rewrite_max_log_bytes: rewrite dovecot.index past this much unindexed log. */
const REWRITE_MAX_LOG_BYTES = 128 * 1024;

/**
 * An open mailbox: its log, its current state (a projection of the log),
 * transactions, views and change streams. States are immutable values: what
 * `state` returned stays valid while the mailbox moves on.
 */
export class Mailbox {
  readonly name: string;
  readonly backend: MailboxBackend;
  private readonly log: TransactionLog;
  private current: IndexMapState;
  private readonly live: ChangeFanout;
  private externalFollow: { unsubscribe(): void } | undefined;
  private stopMailFileWatch: (() => void) | undefined;
  private subscriberCount = 0;
  private readonly options: MailboxOptions;
  private closed = false;

  private constructor(name: string, backend: MailboxBackend, log: TransactionLog, state: IndexMapState, options: MailboxOptions) {
    this.name = name;
    this.backend = backend;
    this.log = log;
    this.current = state;
    this.options = options;
    this.live = new ChangeFanout(options.subscriberBufferMax ?? 10_000);
  }

  /** Opens the mailbox's log and state; creates the log when `uidValidity` is given and none exists. */
  static open(name: string, backend: MailboxBackend, options: MailboxOptions & { createWithUidValidity?: number } = {}): Mailbox {
    const create = options.createWithUidValidity !== undefined
      ? { initialRecords: backend.initialRecords(options.createWithUidValidity) }
      : undefined;
    const log = TransactionLog.open(backend.indexPrefix, { fsync: options.fsync, lockTimeoutMs: options.lockTimeoutMs, create });
    try {
      return new Mailbox(name, backend, log, loadState(backend.indexPrefix), options);
    } catch (err) {
      void log.close();
      throw err;
    }
  }

  /** The state as of the last refresh or commit. */
  get state(): IndexMapState {
    return this.current;
  }

  get uidValidity(): number {
    return this.current.header.uidValidity;
  }

  get position(): LogPosition {
    return position(this.current);
  }

  /** Reads what other processes committed since and advances the state. */
  async refresh(): Promise<IndexMapState> {
    this.checkOpen();
    this.advance(readSince(this.backend.indexPrefix, this.current).transactions);
    if (this.backend.syncExternalChanges) {
      await this.log.transact(async () => {
        this.advance(readSince(this.backend.indexPrefix, this.current).transactions);
        return this.backend.syncExternalChanges!(this.current, { logHead: this.log.headPosition });
      }).then((r) => r && this.advance(r.transactions));
    }
    return this.current;
  }

  /** A new transaction; nothing is written before `commit()`. */
  transaction(): MailboxTransaction {
    this.checkOpen();
    return new MailboxTransaction(this);
  }

  /** A view at the current state: MSNs that move only when the view syncs. */
  view(): MailboxViewHandle {
    this.checkOpen();
    return new MailboxViewHandle(this, this.current);
  }

  /** The state at an earlier log position (time travel). */
  stateAt(at: LogPosition): IndexMapState {
    return stateAt(this.backend.indexPrefix, at);
  }

  /**
   * The mailbox GUID (`doveadm mailbox status guid`): 32 lowercase hex
   * digits, or undefined while the mailbox has none (an mbox not synced yet).
   */
  guid(): string | undefined {
    return this.backend.mailboxGuid(this.current);
  }

  /** The stored bytes of message `uid`. */
  readMessage(uid: number): Promise<Uint8Array> {
    return this.backend.readMessage(this.current, uid);
  }

  /**
   * Change batches, one per committed transaction, in log order: from `from`
   * when given (everything after it, as QRESYNC resumes), then live —
   * including transactions other processes (Dovecot too) commit, noticed by
   * an inotify watch on the log. A subscriber that falls more than
   * `subscriberBufferMax` batches behind gets SubscriberOverflowError, whose
   * `resumeFrom` is where to subscribe again.
   */
  changes(from?: LogPosition): Observable<ChangeBatch> {
    this.checkOpen();
    return new Observable<ChangeBatch>((subscriber) => {
      // The backlog is read synchronously, then live batches continue right after it.
      let next = from ?? this.position;
      if (from) {
        const upTo = this.position;
        for (const tx of readLog(this.backend.indexPrefix, from).transactions) {
          if (isBefore(upTo, tx.end)) break;
          subscriber.next(changeBatchOf(tx));
          next = tx.end;
        }
      }
      const leave = this.live.join(subscriber, next);
      this.retainExternalFollow();
      return () => {
        leave();
        this.releaseExternalFollow();
      };
    });
  }

  /** Commits built records under the log lock. Used by MailboxTransaction. */
  async commitWith(build: (state: IndexMapState) => Promise<LogTransactionRecords>): Promise<CommitResult | undefined> {
    this.checkOpen();
    let result;
    for (;;) {
      // What a crashed writer left is logged first, in its own transaction
      // under the same lock; then the commit is built on top of it.
      let leftovers = false;
      const commit = () => this.log.transact(async () => {
        this.advance(readSince(this.backend.indexPrefix, this.current).transactions);
        const found = (await this.backend.adoptLeftovers?.(this.current)) ?? [];
        if (found.length > 0) {
          leftovers = true;
          return found;
        }
        return build(this.current);
      });
      try {
        result = this.backend.withCommitLocks ? await this.backend.withCommitLocks(commit) : await commit();
      } catch (err) {
        await this.backend.afterCommit?.(false);
        throw err;
      }
      if (!leftovers) break;
      if (result) this.advance(result.transactions);
    }
    await this.backend.afterCommit?.(result !== undefined);
    if (!result) return undefined;
    this.advance(result.transactions);
    await this.maybeCheckpoint();
    return { start: result.start, end: result.end, modseq: result.modseq };
  }

  /** Number of live change-stream subscribers (for tests of teardown). */
  get liveSubscribers(): number {
    return this.subscriberCount;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.externalFollow?.unsubscribe();
    this.externalFollow = undefined;
    this.stopMailFileWatch?.();
    this.stopMailFileWatch = undefined;
    this.live.complete();
    await this.log.close();
    await this.backend.close();
  }

  private advance(transactions: readonly LogTransaction[]): void {
    for (const tx of transactions) {
      if (isBefore(tx.position, this.position)) continue;
      this.current = applyTransaction(this.current, tx);
      this.live.publish(changeBatchOf(tx));
    }
  }

  /** Rotates and rewrites dovecot.index the way Dovecot decides to, under the lock. */
  private async maybeCheckpoint(): Promise<void> {
    const unindexed = this.log.headPosition.offset - this.checkpointOffset();
    const rotate = this.log.shouldRotate();
    if (!rotate && unindexed < REWRITE_MAX_LOG_BYTES) return;
    await this.log.transact(async () => {
      this.advance(readSince(this.backend.indexPrefix, this.current).transactions);
      // Like Dovecot, rotate only when the mail files have caught up with the log
      // (tail = head): a Maildir/mbox backend still owes internal changes otherwise.
      const h = this.current.header;
      const backendBehind = this.backend.syncExternalChanges !== undefined && h.logFileTailOffset < h.logFileHeadOffset;
      if (rotate && !backendBehind && this.log.shouldRotate()) {
        const header = await this.log.rotateLocked();
        this.current = enterLogFile(this.current, header);
      }
      writeCheckpoint(this.backend.indexPrefix, this.current, { backup: this.backend.keepsIndexBackup, fsync: this.options.fsync !== "never" });
      this.indexedAt = this.position;
      return [];
    });
  }

  private indexedAt: LogPosition | undefined;
  private checkpointOffset(): number {
    const at = this.indexedAt ?? { fileSeq: getHeader(this.current).logFileSeq, offset: 0 };
    return at.fileSeq === this.log.headPosition.fileSeq ? at.offset : 0;
  }

  private retainExternalFollow(): void {
    if (this.subscriberCount++ > 0) return;
    // One watch per mailbox, however many subscribers: it only triggers a catch-up read.
    this.externalFollow = followLog(this.backend.indexPrefix, this.position).subscribe({
      next: (tx) => {
        // Our own commits come back through the watch too: those are already applied.
        if (!isBefore(this.position, tx.end)) return;
        const here = this.position;
        if (tx.position.fileSeq === here.fileSeq && tx.position.offset === here.offset) this.advance([tx]);
        else this.advance(readSince(this.backend.indexPrefix, this.current).transactions);
      },
      error: (err) => this.live.fail(err),
    });
    // Mail other programs change without a log (an MDA's delivery, a client's rename): synced when its files change.
    const paths = this.backend.mailFilePaths?.() ?? [];
    if (paths.length > 0) this.stopMailFileWatch = watchMailFiles(paths, () => this.syncMailFiles());
  }

  /**
   * A watched mail file changed: sync, so that subscribers see the change as
   * an EXTERNAL transaction. While another process holds the mail lock
   * (Dovecot, an MDA), it tries again shortly; other errors end the streams.
   */
  private async syncMailFiles(): Promise<void> {
    if (this.closed || this.subscriberCount === 0) return;
    try {
      await this.refresh();
    } catch (err) {
      if (this.closed) return;
      if (err instanceof LockTimeoutError) setTimeout(() => void this.syncMailFiles(), 200).unref();
      else this.live.fail(err);
    }
  }

  private releaseExternalFollow(): void {
    if (--this.subscriberCount > 0) return;
    this.externalFollow?.unsubscribe();
    this.externalFollow = undefined;
    this.stopMailFileWatch?.();
    this.stopMailFileWatch = undefined;
  }

  private checkOpen(): void {
    if (this.closed) throw new MailstoreError("INVALID_ARGUMENT", `mailbox ${this.name} is closed`);
  }
}

export type LogTransactionRecords = ReadonlyArray<ReadonlyArray<import("../log/types.js").LogRecord>>;

/** What a commit wrote. */
export interface CommitResult {
  start: LogPosition;
  end: LogPosition;
  modseq: bigint;
}

export { SubscriberOverflowError };

