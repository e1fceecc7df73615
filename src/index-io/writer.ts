/**
 * The index writer: the one way a change reaches a mailbox's (or the mdbox
 * map's) index, modelled on Dovecot's mail_index_sync_begin … commit.
 *
 * - sync() takes the log lock (callers take a format's own locks first, in
 *   Dovecot's order), catches the state up ONCE from the bytes the log read
 *   while locking, and hands the caller a locked IndexSync.
 * - IndexSync.append() writes transactions with one write and folds exactly
 *   what it wrote (the log's decoded AppendResult), never re-reading. With
 *   no one listening to folds, that fold waits until the state is read: a
 *   short command that commits and closes (doveadm flags) never pays for it
 *   unless dovecot.index is rewritten.
 * - `syncTail` ends a write with the log_file_tail_offset update, as
 *   Dovecot's syncing commits do: "the mail files have everything up to here".
 * - Before the lock is released, dovecot.index is rewritten by one policy
 *   (Dovecot's mail_index_rewrite_max_log_bytes), rotating the log the way
 *   Dovecot does and only when the mail files have caught up with it.
 *
 * Every fold reports its effects (projections/effects.ts) to `onFold`: change
 * streams are published from there. For formats whose files follow the
 * tail (Maildir, mbox) the writer also keeps the effects of the
 * transactions after the tail, which is what a file sync must still carry
 * out, so that the sync need not read the log again.
 */
import * as fs from "node:fs";
import type { FsyncMode } from "../log/log.js";
import { IndexCorruptedError, LogPositionLostError } from "../shared/errors.js";
import { TransactionLog, type AppendResult, type CreatedLog, type CreateLogOptions } from "../log/log.js";
import { releaseLogFile } from "../log/shared-file.js";
import type { LogFileHeader, LogPosition, LogRecord, LogTransaction } from "../log/types.js";
import { advance, advanceWithEffects, enterLogFile } from "../projections/apply.js";
import type { TransactionEffects } from "../projections/effects.js";
import { position } from "../projections/read.js";
import type { IndexMapState } from "../projections/state.js";
import { foldedRowsOf } from "../projections/fold-rows.js";
import { tailOffsetUpdate } from "../projections/tail-offset.js";
import { writeCheckpoint } from "./checkpoint-file.js";
import type { ClosedIndex, ClosedIndexCache } from "./closed-index-cache.js";
import { isBefore, loadState, readSince, stateOfCreatedLog } from "./load-state.js";

/** Dovecot's mail_index_rewrite_max_log_bytes: rewrite dovecot.index past this much unindexed log. */
export const REWRITE_MAX_LOG_BYTES = 128 * 1024;
/** Dovecot's mail_index_rewrite_min_log_bytes: the threshold once an open had to read that much log. */
export const REWRITE_MIN_LOG_BYTES = 8 * 1024;
/**
 * Ours, beside Dovecot's byte rules: rewrite dovecot.index once the log
 * after it, as this writer appended it, changes this many rows (flag and
 * keyword updates, see foldedRowsOf). A flag on all 20,000 messages of a
 * mailbox is 20 bytes of log, far under both byte thresholds, and Dovecot
 * refolds it in C at every open for next to nothing; a fresh process of ours
 * paid ~38 ms of CPU for it at every later open (a status: 139 against 101 ms,
 * the no-op 98), against ~23 ms once in the command that made the change.
 */
export const REWRITE_MIN_FOLD_ROWS = 4096;

export interface IndexWriterOptions {
  readonly fsync?: FsyncMode;
  readonly lockTimeoutMs?: number;
  /** Keep dovecot.index.backup when rewriting dovecot.index (Dovecot does for sdbox/mdbox mailbox indexes). */
  readonly keepsIndexBackup?: boolean;
  /**
   * The mail files follow the log's tail offset (Maildir, mbox): the log is
   * rotated only once they caught up, and the effects after the tail are
   * kept for their sync.
   */
  readonly filesFollowTail?: boolean;
  /** Creates the log with these when it is missing. */
  readonly create?: CreateLogOptions;
  /** Rewrite dovecot.index past this much log it does not cover (default REWRITE_MAX_LOG_BYTES). */
  readonly rewriteMaxLogBytes?: number;
  /** … or past this much, when opening had to read this much (default REWRITE_MIN_LOG_BYTES). */
  readonly rewriteMinLogBytes?: number;
  /** … or once what this writer appended changes this many rows (default REWRITE_MIN_FOLD_ROWS). */
  readonly rewriteMinFoldRows?: number;
  /** Open from here when it holds this index's state, and leave the state here on close. */
  readonly closedIndexes?: ClosedIndexCache;
}

/** The locked side of a sync: what the caller sees and does while the writer holds the log lock. */
export interface IndexSync {
  /** The state, caught up to the end of the log; moves as append() folds. */
  readonly state: IndexMapState;
  /** `state` whose rows may not have been read yet (IndexWriter.headerState): for its header alone. */
  readonly headerState: IndexMapState;
  /** Where the next write lands (the log's end under the lock). */
  readonly logHead: LogPosition;
  /**
   * The effects of every transaction after the state's tail offset, in log
   * order, when this writer folded all of them (Maildir, mbox); undefined
   * when it did not (then a file sync reads them from the log).
   */
  readonly unsyncedEffects: readonly TransactionEffects[] | undefined;
  /**
   * Appends `transactions` in one write and folds exactly them.
   * `syncTail`: the mail files have everything up to the end of this write,
   * so it ends with the tail-offset update (written alone when there are no
   * transactions but the tail lags; nothing is written when neither).
   */
  append(transactions: ReadonlyArray<readonly LogRecord[]>, options?: { syncTail?: boolean }): Promise<AppendResult | undefined>;
}

/**
 * When sync() rewrites dovecot.index before releasing the lock: when the
 * policy says so, always, or never ("none": the caller replaced the index
 * files itself, e.g. a rebuild that wrote a new log).
 */
export type CheckpointPolicy = "due" | "always" | "none";

export class IndexWriter {
  readonly prefix: string;
  /** Told every folded transaction's effects, in log order (change streams). */
  onFold: ((effects: TransactionEffects) => void) | undefined;
  private readonly log: TransactionLog;
  private readonly options: IndexWriterOptions;
  private current: IndexMapState;
  /** Where dovecot.index points, as far as this writer knows. */
  private indexedAt: LogPosition | undefined;
  /** Effects after the tail (filesFollowTail), or undefined when some were never folded here. */
  private unsynced: TransactionEffects[] | undefined;
  /** Opening read more unindexed log than rewriteMinLogBytes: the next sync past it rewrites dovecot.index. */
  private minWrite: boolean;
  /**
   * Transactions this writer appended and has not folded into `current`
   * yet, in log order: folded when the state is next read (settle()).
   * Only kept while no effects are wanted (no onFold, no unsynced).
   */
  private unfolded: LogTransaction[] = [];
  /** Rows the transactions this writer appended since dovecot.index was written change (foldedRowsOf): what every later open refolds. */
  private unindexedRows = 0;

  private constructor(prefix: string, log: TransactionLog, state: IndexMapState, indexedAt: LogPosition | undefined, options: IndexWriterOptions) {
    this.prefix = prefix;
    this.log = log;
    this.current = state;
    this.indexedAt = indexedAt;
    this.options = options;
    this.unsynced = options.filesFollowTail && !tailLags(state) ? [] : undefined;
    this.minWrite = this.unindexedBytes() >= this.rewriteMinLogBytes();
    log.collectNewTransactions();
  }

  /**
   * Loads the state (dovecot.index plus the log after it) and opens the log
   * at the end the load reached, so that opening reads the log once.
   */
  static open(prefix: string, options: IndexWriterOptions = {}): IndexWriter {
    const closed = options.closedIndexes?.take(prefix);
    if (closed) {
      try {
        return IndexWriter.resume(prefix, closed, options);
      } finally {
        releaseLogFile(closed.file);
      }
    }
    if (options.create) TransactionLog.createIfMissing(prefix, options.create, options.fsync);
    // A missing log fails here as TransactionLog.open would (ENOENT), before any reading.
    fs.statSync(prefix + ".log");
    let indexedAt: LogPosition | undefined;
    // Lazy: a command that needs no row (a status) reads dovecot.index's header only; ensureRows reads the rest.
    const state = loadState(prefix, { lazy: true, onCheckpoint: (at) => (indexedAt = at) });
    const knownEnd = state.logModseq > 0n ? { position: position(state), modseq: state.logModseq } : undefined;
    const log = TransactionLog.open(prefix, { fsync: options.fsync, lockTimeoutMs: options.lockTimeoutMs, knownEnd });
    return new IndexWriter(prefix, log, state, indexedAt, options);
  }

  /**
   * Opens a log this process just created (TransactionLog.createIfMissingDecoded,
   * no dovecot.index beside it) from what the creation decoded: the file is
   * not read back. Whatever others appended since is read by the next sync.
   */
  static openCreated(prefix: string, created: CreatedLog, options: IndexWriterOptions = {}): IndexWriter {
    const state = stateOfCreatedLog(created);
    const log = TransactionLog.open(prefix, { fsync: options.fsync, lockTimeoutMs: options.lockTimeoutMs, knownEnd: created.end });
    return new IndexWriter(prefix, log, state, undefined, options);
  }

  /** Continues a state closed a moment ago in this process: only what was appended since is read. */
  private static resume(prefix: string, closed: ClosedIndex, options: IndexWriterOptions): IndexWriter {
    const state = closed.state;
    const knownEnd = { position: position(state), modseq: state.logModseq };
    const log = TransactionLog.open(prefix, { fsync: options.fsync, lockTimeoutMs: options.lockTimeoutMs, knownEnd });
    const writer = new IndexWriter(prefix, log, state, closed.indexedAt, options);
    writer.refresh();
    return writer;
  }

  /** The state, caught up with what this writer appended, its rows read (ensureRows). */
  get state(): IndexMapState {
    this.settle();
    this.ensureRows();
    return this.current;
  }

  /**
   * The state, whose rows may not have been read yet: for what reads only
   * the header (a status of messages, uidnext, highestmodseq). Reading a
   * row of it may throw IndexCorruptedError (a broken row of dovecot.index)
   * where `state` would have loaded the mailbox again, and after close()
   * InvalidArgumentError (its descriptor is closed with the writer).
   */
  get headerState(): IndexMapState {
    return this.settle();
  }

  /** The end of the log as this writer last saw it. */
  get logHead(): LogPosition {
    return this.log.headPosition;
  }

  /** The log file under this writer (reads and rotation policy; never write around the writer). */
  get transactionLog(): TransactionLog {
    return this.log;
  }

  /** Reads what other processes appended, without the lock (Dovecot's mail_index_refresh), and folds it. */
  refresh(): IndexMapState {
    this.catchUp();
    return this.state;
  }

  /** refresh() without reading the rows of a state that has not needed them yet. */
  catchUp(): void {
    this.log.readNew();
    this.foldNew();
    this.settle();
  }

  /**
   * Runs `fn` holding the log lock with the state caught up, then rewrites
   * dovecot.index when the policy says so (or always), still under the lock.
   * Re-entrant: a sync inside a sync (same async chain) shares the lock.
   */
  async sync<T>(fn: (sync: IndexSync) => Promise<T>, checkpoint: CheckpointPolicy = "due", options: { lockTimeoutMs?: number } = {}): Promise<T> {
    return this.log.holdLock(async () => {
      this.foldNew();
      const result = await fn(this.lockedView());
      if (checkpoint !== "none") await this.checkpointLocked(checkpoint);
      return result;
    }, options);
  }

  /**
   * Rewrites dovecot.index when it leaves rewriteMinLogBytes or more of the
   * log uncovered: the end of a bulk write (an import), whose last batches
   * would otherwise be replayed by every later open (up to
   * rewriteMaxLogBytes: a cold command's largest fold). Writes nothing when
   * the index is closer to the log's end than that.
   */
  async indexTail(): Promise<void> {
    if (this.unindexedBytes() < this.rewriteMinLogBytes()) return;
    this.minWrite = true;
    await this.sync(async () => undefined, "due");
  }

  async close(): Promise<void> {
    const cache = this.options.closedIndexes;
    // A state whose running modseq is unknown cannot resume a log read (knownEnd): it is loaded again instead.
    // (Appending gives it one: only then does the check need what is still unfolded.)
    // Nor is a state whose rows were never read: its next open reads the header again, and a
    // later reader of the kept state would meet a broken row outside this writer's recovery.
    const keep = cache && !this.current.records.unread && (this.current.logModseq > 0n || this.unfolded.length > 0) ? this.log.retainHead() : undefined;
    await this.log.close();
    // dovecot.index's descriptor of rows never read is closed with the writer (a kept state has its rows).
    if (!keep) this.current.records.release();
    // The state is folded only if a later open in this process takes it (a short command closes its storage unread).
    const writer = this;
    if (keep) cache!.put(this.prefix, { get state() { return writer.state; }, get indexedAt() { return writer.indexedAt; }, file: keep });
  }

  private lockedView(): IndexSync {
    const writer = this;
    return {
      get state() {
        return writer.state;
      },
      get headerState() {
        return writer.headerState;
      },
      get logHead() {
        return writer.log.headPosition;
      },
      get unsyncedEffects() {
        return writer.unsynced;
      },
      append: (transactions, options = {}) => this.appendLocked(transactions, options.syncTail ?? false),
    };
  }

  private async appendLocked(transactions: ReadonlyArray<readonly LogRecord[]>, syncTail: boolean): Promise<AppendResult | undefined> {
    const nonEmpty = transactions.some((t) => t.length > 0);
    // Dovecot skips the tail update when it would not move (saved_tail_offset == offset).
    const writeTail = syncTail && (nonEmpty || tailLags(this.settle()));
    if (!nonEmpty && !writeTail) return undefined;
    // A fold follows at once (listeners, a file sync to come): the rows are read and checked
    // before anything is written, so that a broken one the log cannot rebuild past fails
    // the commit before it lands, not after it (a landed commit reported as failed).
    if (nonEmpty && (this.onFold !== undefined || this.unsynced !== undefined)) this.ensureRows();
    const result = await this.log.transact(async () => {
      // Nothing else writes under our lock, unless a sibling log object of
      // this process in the same lock scope did: fold that first.
      this.foldNew();
      return transactions;
    }, writeTail ? { syncTail: tailOffsetUpdate } : {});
    if (!result) return result;
    for (const t of transactions) this.unindexedRows += foldedRowsOf(t, this.current.records.count);
    if (this.onFold === undefined && this.unsynced === undefined) {
      // No effects wanted: folded when the state is next read.
      this.unfolded.push(...result.transactions);
    } else {
      // Effects wanted (listeners, a file sync to come): folded now, in order.
      this.fold(this.settleInto(result.transactions), []);
    }
    return result;
  }

  /** Folds what this writer appended and has not folded yet; the state, caught up with it. */
  private settle(): IndexMapState {
    if (this.unfolded.length > 0) this.fold(this.settleInto([]), []);
    return this.current;
  }

  /** The unfolded transactions followed by `transactions`, taking them out of `unfolded`. */
  private settleInto(transactions: readonly LogTransaction[]): readonly LogTransaction[] {
    if (this.unfolded.length === 0) return transactions;
    const all = [...this.unfolded, ...transactions];
    this.unfolded = [];
    return all;
  }

  /** Folds what the log read since the last fold: from its own catch-up when that continues the state, else from the log. */
  private foldNew(): void {
    this.settle();
    // A state that has seen no transaction of its file yet sits before the file's header.
    const at = position(this.current);
    const header = this.log.header;
    const here = at.fileSeq === header.fileSeq && at.offset < header.hdrSize ? { fileSeq: at.fileSeq, offset: header.hdrSize } : at;
    const caught = this.log.takeNewTransactions();
    if (caught && !isBefore(here, caught.from)) {
      this.fold(caught.transactions, []);
      return;
    }
    let read;
    try {
      read = readSince(this.prefix, this.current);
    } catch (err) {
      if (!(err instanceof LogPositionLostError)) throw err;
      // Our position is gone (the log rotated twice, or was recreated): start over from the files, as Dovecot reopens its index.
      this.reload(undefined);
      this.unindexedRows = 0; // counted against the dovecot.index just loaded
      return;
    }
    this.fold(read.transactions, read.headers);
  }

  private fold(transactions: readonly LogTransaction[], headers: readonly LogFileHeader[]): void {
    let here = position(this.current);
    let fresh = transactions.filter((tx) => !isBefore(tx.position, here));
    if (fresh.length === 0) return;
    if (this.current.records.unread) {
      // Rows first, where a broken one can still be recovered from (a reload to `here`, then `fresh` folds onto it).
      this.ensureRows();
      here = position(this.current);
      fresh = fresh.filter((tx) => !isBefore(tx.position, here));
      if (fresh.length === 0) return;
    }
    // Effects are for the files' sync and for listeners: without either, they are not collected.
    if (this.unsynced === undefined && this.onFold === undefined) {
      this.current = advance(this.current, fresh, headers);
      this.trimUnsynced();
      return;
    }
    const { state, effects } = advanceWithEffects(this.current, fresh, headers);
    this.current = state;
    if (this.unsynced) {
      if (fresh[0].position.fileSeq !== here.fileSeq) this.unsynced = undefined;
      else this.unsynced.push(...effects);
    }
    this.trimUnsynced();
    for (const fx of effects) this.onFold?.(fx);
  }

  /** Drops kept effects the tail has passed; starts keeping them once the tail reaches the head. */
  private trimUnsynced(): void {
    if (!this.options.filesFollowTail) return;
    const h = this.current.header;
    if (!tailLags(this.current)) {
      this.unsynced = [];
      return;
    }
    if (this.unsynced) this.unsynced = this.unsynced.filter((fx) => fx.end.fileSeq !== h.logFileSeq || fx.end.offset > h.logFileTailOffset);
  }

  /**
   * Dovecot's rules, under the lock: rotate when the log is due and the
   * mail files have caught up (tail = head); rewrite dovecot.index after a
   * rotation, past rewriteMaxLogBytes of log it does not cover, or past
   * rewriteMinLogBytes when opening already had to read that much (so that
   * the next open does not read it again); and ours, once what this writer
   * appended changes rewriteMinFoldRows rows (every later open would fold
   * them again).
   */
  private async checkpointLocked(policy: Exclude<CheckpointPolicy, "none">): Promise<void> {
    const rotate = this.log.shouldRotate() && !(this.options.filesFollowTail && tailLags(this.settle()));
    const unindexed = this.unindexedBytes();
    const due =
      unindexed >= (this.options.rewriteMaxLogBytes ?? REWRITE_MAX_LOG_BYTES) ||
      (this.minWrite && unindexed >= this.rewriteMinLogBytes()) ||
      (unindexed > 0 && this.unindexedRows >= (this.options.rewriteMinFoldRows ?? REWRITE_MIN_FOLD_ROWS));
    if (policy !== "always" && !rotate && !due) return;
    this.settle();
    // A broken row must not be copied into the new file: found here, the state is loaded again first.
    this.ensureRows();
    if (rotate) {
      const header = await this.log.rotateLocked();
      this.current = enterLogFile(this.current, header);
      this.trimUnsynced();
    }
    writeCheckpoint(this.prefix, this.current, { backup: this.options.keepsIndexBackup ?? false, fsync: this.options.fsync !== "never" });
    this.indexedAt = position(this.current);
    this.minWrite = false;
    this.unindexedRows = 0;
  }

  /**
   * Reads the rows of a state loaded lazily (loadState's `lazy`), once. A
   * broken one (or seen/deleted counters that do not match them) is what a
   * whole read of dovecot.index at open would have found: the state is
   * loaded again the same way, from the log without the checkpoint, up to
   * the state's own position, not the log's end: whatever comes after
   * (what this writer or others appended) is then folded as usual, so its
   * effects still reach listeners and commit hooks.
   */
  private ensureRows(): void {
    const records = this.current.records;
    if (!records.unread) return;
    try {
      records.load();
    } catch (err) {
      if (!(err instanceof IndexCorruptedError)) throw err;
      this.reload(position(this.current));
    }
  }

  /**
   * The state loaded again from the files (read whole): at `until` (where
   * the state was; the log past it is folded later), or at the end of the
   * log when the position is lost.
   */
  private reload(until?: LogPosition): void {
    let indexedAt: LogPosition | undefined;
    const replaced = this.current.records;
    try {
      this.current = loadState(this.prefix, { onCheckpoint: (at) => (indexedAt = at), ...(until ? { until } : {}) });
    } catch (err) {
      // The log no longer holds `until` (recreated meanwhile): to its end, as a lost position.
      if (!(until !== undefined && err instanceof LogPositionLostError)) throw err;
      indexedAt = undefined;
      this.current = loadState(this.prefix, { onCheckpoint: (at) => (indexedAt = at) });
    }
    // Where dovecot.index points now: nowhere when the load could not use it, and then the
    // next sync past rewriteMinLogBytes rewrites it, as after an open that found it broken.
    this.indexedAt = indexedAt;
    this.minWrite = this.unindexedBytes() >= this.rewriteMinLogBytes();
    if (until === undefined || !isSamePosition(position(this.current), until)) {
      // A jump forward (lost position, or only a later checkpoint to start from): what lies between is not folded here.
      this.unfolded = [];
      this.unsynced = undefined;
    }
    this.trimUnsynced();
    // Rows of the state replaced that were never read (a lost position): their descriptor is not needed.
    replaced.release();
  }

  /** Log bytes an open would read after dovecot.index (all of the head file when the index is older). */
  private unindexedBytes(): number {
    return this.log.headPosition.offset - this.checkpointOffset();
  }

  private rewriteMinLogBytes(): number {
    return this.options.rewriteMinLogBytes ?? REWRITE_MIN_LOG_BYTES;
  }

  private checkpointOffset(): number {
    const at = this.indexedAt;
    return at !== undefined && at.fileSeq === this.log.headPosition.fileSeq ? at.offset : 0;
  }
}

function isSamePosition(a: LogPosition, b: LogPosition): boolean {
  return a.fileSeq === b.fileSeq && a.offset === b.offset;
}

/** The mail files are behind the log: internal changes after the tail offset are not in them yet. */
function tailLags(state: IndexMapState): boolean {
  return state.header.logFileTailOffset < state.header.logFileHeadOffset;
}
