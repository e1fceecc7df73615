// The deep import loads only Observable, not the whole rxjs bundle (~0.1 s at every CLI start).
import { Observable } from "rxjs/internal/Observable";
import { changeBatchFromEffects, type ChangeBatch } from "./changes.js";
import type { CommitIntent, MailboxBackend, StorageLogAppend } from "../drivers/driver.js";
import { IndexCorruptedError, InvalidArgumentError, LockTimeoutError, MailstoreError } from "../shared/errors.js";
import { followLog } from "../log/follow.js";
import { watchMailFiles } from "./mail-file-watch.js";
import type { FsyncMode } from "../log/log.js";
import type { LogPosition, LogRecord, UidRange } from "../log/types.js";
import { readLog } from "../log/view.js";
import { isBefore, stateAt } from "../index-io/load-state.js";
import { IndexWriter, type IndexSync } from "../index-io/writer.js";
import type { ClosedIndexCache } from "../index-io/closed-index-cache.js";
import { fetchMessages, type FetchedMessage, type FetchField, type FetchOptions } from "./mailbox-fetch.js";
import { mailboxStatus, type MailboxStatus, type StatusItem } from "./mailbox-status.js";
import { updateMailbox, type MailboxUpdate } from "./mailbox-update.js";
import { enableModseqs } from "./mailbox-modseqs.js";
import { MailboxTransaction } from "./mailbox-transaction.js";
import { finishInterruptedMoves, moveMessages, type MoveResult } from "./mailbox-move.js";
import { MailboxViewHandle } from "./mailbox-view.js";
import { advanceWithEffects } from "../projections/apply.js";
import { position } from "../projections/read.js";
import type { IndexMapState } from "../projections/state.js";
import type { TransactionEffects } from "../projections/effects.js";
import { ChangeFanout, SubscriberOverflowError } from "./subscribers.js";
import { isLandedInLog, markLandedInLog } from "./landed-errors.js";
import { cleanupAfter } from "../shared/cleanup.js";

export interface MailboxOptions {
  fsync?: FsyncMode;
  lockTimeoutMs?: number;
  /** Batches a slow subscriber may have waiting before it is cut off (default 10,000). */
  subscriberBufferMax?: number;
  /**
   * Open for reading only (forensics, read-only verbs): nothing is created,
   * renamed or rewritten, no lock is taken, and the store must exist (as
   * mustExist). A mailbox shows what its index holds: Maildir and mbox file
   * changes that no index has seen yet stay out of it
   * (hasUnindexedFileChanges() tells). Every change is UNSUPPORTED.
   */
  readOnly?: boolean;
  /**
   * Called around every commit of this mailbox, inside the log lock (so in
   * log order, and no other writer of this store gets between the append
   * and the hook). See CommitHooks. Replication (src/replication) uses them.
   */
  commitHooks?: CommitHooks;
}

/** What a commit put in the log, as the after-commit hook sees it. */
export interface CommittedRange {
  /** Log head before the commit's first transaction (what a crashed writer left included). */
  start: LogPosition;
  /** Log head after the commit (its file syncs included). */
  end: LogPosition;
  /** The log's running modseq at `start` and at `end`. */
  modseqBefore: bigint;
  modseq: bigint;
  /** The effects of every transaction in the range, in log order. */
  effects: readonly TransactionEffects[];
  /** The state at `end`. */
  state: IndexMapState;
  /**
   * What the commit appended to a storage-wide log (mdbox: the map records
   * of its saves, copies and expunges), in order; empty for other formats
   * and for commits that leave the map alone (flags, keywords).
   */
  storageLog: readonly StorageLogAppend[];
  /**
   * Lets go of the storage-wide lock the commit holds (mdbox's map lock,
   * which a save, copy or expunge takes before the mailbox's log lock)
   * before the commit ends; the mailbox's log lock stays until then. For a
   * hook that has what it needs of the storage (`storageLog` above) and
   * then waits on something slow, replication's JetStream round trip: the
   * other mailboxes' commits need not wait with it. Nothing after it may
   * write the storage-wide log. A no-op where the commit holds none.
   */
  releaseStorageLock?(): Promise<void>;
  /**
   * True for a refresh that logged what others changed in the mail files
   * (Maildir, mbox: an MDA's delivery, a flag changed by another program):
   * not a commit, and `beforeCommit` did not run for it (it records what
   * already happened).
   */
  sync?: boolean;
}

/**
 * Generic commit hooks. `beforeCommit` runs under the lock before anything
 * is built or written: throwing there fails the commit with nothing written.
 * `afterCommit` runs under the lock once the commit is in the local log:
 * throwing there fails `commit()` (the local log keeps the transaction).
 * `afterCommit` also runs after a `refresh()` that logged changes found in
 * the mail files (`committed.sync`); throwing there fails the refresh.
 */
export interface CommitHooks {
  /**
   * Runs before the commit takes any lock, for a check that waits on
   * something slow (replication's fencing round trip): under mdbox's
   * storage-wide map lock, which a save takes before the log lock, every
   * other mailbox's save would wait with it. Throwing there fails the
   * commit with nothing written. What it returns runs under the log lock,
   * before `beforeCommit`: there it confirms what the check found, which
   * the lock's wait may have made stale.
   */
  beforeCommitLocks?(mailbox: Mailbox): Promise<(() => Promise<void>) | undefined>;
  beforeCommit?(mailbox: Mailbox, state: IndexMapState): Promise<void>;
  afterCommit?(mailbox: Mailbox, committed: CommittedRange): Promise<void>;
  /**
   * Runs when Storage.openMailbox opened the mailbox for writing (not for
   * the mailboxes a storage opens for its own work: a create's, rename's
   * or delete's hooks, a move's recovery): replication follows its log
   * from there. Throwing there fails the open (the mailbox is closed).
   */
  afterOpen?(mailbox: Mailbox): Promise<void>;
  /**
   * Runs first in close(), with the mailbox still open: what the hooks keep
   * for it (replication's log watch) ends there, and what they have under
   * way for it may finish. What it throws, close() throws, once the mailbox
   * is closed.
   */
  beforeClose?(mailbox: Mailbox): Promise<void>;
}

/**
 * An open mailbox: its log, its current state (a projection of the log),
 * transactions, views and change streams. States are immutable values: what
 * `state` returned stays valid while the mailbox moves on.
 */
export class Mailbox {
  readonly name: string;
  /** @internal The format driver: for the engine's own modules, not part of the public API. */
  readonly backend: MailboxBackend;
  /** Every change of this mailbox's index goes through it (Dovecot's mail_index_sync). */
  private readonly writer: IndexWriter;
  private readonly live: ChangeFanout;
  private externalFollow: { unsubscribe(): void } | undefined;
  private stopMailFileWatch: (() => void) | undefined;
  private subscriberCount = 0;
  /** Collects the effects a commit folds, for CommitHooks.afterCommit. */
  private foldTap: ((effects: TransactionEffects) => void) | undefined;
  private readonly options: MailboxOptions;
  /** Told once the mailbox is closed (its Storage forgets it). */
  private readonly onClosed: ((box: Mailbox) => void) | undefined;
  private closed = false;
  /** The close under way (a second close() waits for the first). */
  private closing: Promise<void> | undefined;

  private constructor(name: string, backend: MailboxBackend, writer: IndexWriter, options: MailboxOptions, onClosed?: (box: Mailbox) => void) {
    this.name = name;
    this.onClosed = onClosed;
    this.backend = backend;
    this.writer = writer;
    this.options = options;
    this.live = new ChangeFanout(options.subscriberBufferMax ?? 10_000);
  }

  /**
   * Every transaction the writer folds (ours and others') is published once,
   * from its effects, while someone listens: a subscriber or a commit hook.
   * With no one, the writer folds without effects, and folds a commit only
   * when the state is next read (a flags command never reads it).
   */
  private listenToFolds(): void {
    const listened = this.live.size > 0 || this.foldTap !== undefined;
    this.writer.onFold = !listened ? undefined : (effects) => {
      this.foldTap?.(effects);
      this.live.publish(changeBatchFromEffects(effects));
    };
  }

  /**
   * @internal Opens the mailbox's log and state; creates the log when
   * `uidValidity` is given and none exists. Users open mailboxes through
   * Storage.openMailbox.
   */
  static open(
    name: string,
    backend: MailboxBackend,
    options: MailboxOptions & { createWithUidValidity?: number; closedIndexes?: ClosedIndexCache; onClosed?: (box: Mailbox) => void } = {},
  ): Mailbox {
    const create = options.createWithUidValidity !== undefined
      ? { initialRecords: backend.initialRecords(options.createWithUidValidity) }
      : undefined;
    const writer = IndexWriter.open(backend.indexPrefix, {
      fsync: options.fsync,
      lockTimeoutMs: options.lockTimeoutMs,
      create,
      keepsIndexBackup: backend.keepsIndexBackup,
      filesFollowTail: backend.syncExternalChanges !== undefined,
      closedIndexes: options.closedIndexes,
    });
    return new Mailbox(name, backend, writer, options, options.onClosed);
  }

  /** The state as of the last refresh or commit. */
  get state(): IndexMapState {
    return this.writer.state;
  }

  /**
   * The state, whose rows may not have been read yet (IndexWriter.headerState): for what reads only its header.
   * Rows not read before the mailbox closes cannot be read after (InvalidArgumentError): use `state` to keep one.
   */
  get headerState(): IndexMapState {
    return this.writer.headerState;
  }

  /**
   * `read(state)` for a read that only looks (a search): on the state whose
   * rows may not have been read yet (a lookup of one uid reads the leaves it
   * needs, not all of dovecot.index); when a row of this mailbox's
   * dovecot.index it reads is broken, again on `state`, which loads the
   * mailbox as if the open had found it. `read` may run twice: it must be
   * synchronous (a Promise returned is an InvalidArgumentError) and change
   * nothing.
   * @throws what `read` throws, other than that broken row.
   */
  readState<T>(read: (state: IndexMapState) => T): T {
    const state = this.headerState;
    let result: T;
    try {
      result = read(state);
    } catch (err) {
      if (!isUnreadRowBroken(err, state, this.writer.prefix)) throw err;
      result = read(this.state);
    }
    if (typeof (result as { then?: unknown } | null)?.then === "function") {
      // Its rejection would escape the retry above (and a second run would race the first).
      throw new InvalidArgumentError("readState takes a synchronous read");
    }
    return result;
  }

  get uidValidity(): number {
    return this.headerState.header.uidValidity;
  }

  get position(): LogPosition {
    return position(this.headerState);
  }

  /**
   * Reads what other processes committed since and advances the state. For
   * Maildir and mbox, whose files others change without a log, the files are
   * synced too, under the log lock (Dovecot's mailbox sync).
   */
  async refresh(): Promise<IndexMapState> {
    await this.catchUp();
    return this.state;
  }

  /**
   * refresh() without reading the rows of a state that has not needed them
   * yet: for a caller that reads the state through readState(). Reads no
   * row only when the log holds nothing new (a fold needs every row) and
   * there are no mail files to sync: dbox, or a read-only mailbox. A
   * writable Maildir or mbox compares its files with every row.
   */
  async catchUp(): Promise<void> {
    this.checkOpen();
    if (this.backend.syncExternalChanges && !this.options.readOnly) {
      await this.writer.sync((sync) => this.reportingWrites(sync, () => this.syncMailFiles(sync), true));
    } else this.writer.catchUp();
  }

  /**
   * Rewrites dovecot.index when the log holds 8 KB or more it does not cover
   * (Dovecot's rewrite_min_log_bytes), under the log lock: after a bulk
   * write (an import), so that later opens start from the index instead of
   * replaying its last batches.
   */
  async indexLogTail(): Promise<void> {
    this.checkOpen();
    this.checkWritable();
    await this.writer.indexTail();
  }

  /**
   * Whether the mail files (Maildir's new/ and cur/, an mbox file) changed
   * since an index last synced them: a read-only mailbox does not show those
   * changes, a writing refresh() logs them. Always false for dbox, whose
   * files change only with the index. Reads no row when the index's stamps
   * (Maildir's new/ and cur/ mtimes, the mbox file's size and mtime, in the
   * header) say nothing changed; else every row (readState).
   */
  hasUnindexedFileChanges(): boolean {
    const changed = this.backend.filesChangedSinceSync;
    if (changed === undefined) return false;
    return this.readState((state) => changed.call(this.backend, state));
  }

  /**
   * Brings the mail files and the index together inside a sync: what others
   * changed in the files is logged, and what the log holds that the files do
   * not (this process's flag changes and expunge requests) is written to
   * them, ending with the tail-offset update when the files caught up.
   */
  private async syncMailFiles(sync: IndexSync): Promise<void> {
    const result = await this.backend.syncExternalChanges!(sync.state, { logHead: sync.logHead, unsyncedEffects: sync.unsyncedEffects });
    await sync.append(result.transactions, { syncTail: result.filesSynced });
  }

  /** A new transaction; nothing is written before `commit()`. */
  transaction(): MailboxTransaction {
    this.checkOpen();
    return new MailboxTransaction(this);
  }

  /**
   * IMAP MOVE of `uids` to `target`: a copy commit there, then an expunge
   * commit here, journaled so that a process killed between the two leaves
   * each message in exactly one mailbox once this one is opened again
   * (mailbox-move.ts).
   */
  async moveTo(target: Mailbox, uids: readonly UidRange[]): Promise<MoveResult> {
    this.checkOpen();
    // Before the intent journal is touched: a read-only store gets no slot file either.
    this.checkWritable();
    target.checkWritable();
    return moveMessages(this, target, uids, this.options.fsync !== "never");
  }

  /** Finishes the moves out of this mailbox that a killed process left half done (Storage.openMailbox runs it). */
  finishInterruptedMoves(openExisting: (name: string) => Promise<Mailbox | undefined>): Promise<void> {
    return finishInterruptedMoves(this, { openExisting }, this.options.fsync !== "never");
  }

  /** A view at the current state: MSNs that move only when the view syncs. */
  view(): MailboxViewHandle {
    this.checkOpen();
    return new MailboxViewHandle(this, this.state);
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
    return this.backend.mailboxGuid(this.state);
  }

  /** The stored bytes of message `uid`. */
  readMessage(uid: number): Promise<Uint8Array> {
    return this.backend.readMessage(this.state, uid);
  }

  // Status and fetch live in their own modules (mailbox-status.ts, mailbox-fetch.ts).

  /**
   * `doveadm mailbox status` items of the current state: see mailbox-status.ts.
   * `refresh`: include other writers' changes first (as refresh()).
   */
  async status<T extends StatusItem>(items: readonly T[], options: { refresh?: boolean } = {}): Promise<Pick<MailboxStatus, T>> {
    if (options.refresh) await this.catchUp();
    return mailboxStatus(this, items);
  }

  /**
   * Dovecot's mailbox_update: a UIDVALIDITY for a mailbox without messages,
   * a minimum next UID (see mailbox-update.ts).
   * @returns the log range written, or undefined when nothing changed.
   */
  async update(update: MailboxUpdate): Promise<CommitResult | undefined> {
    return updateMailbox(this, update);
  }

  /**
   * Dovecot's mail_index_modseq_enable (a CONDSTORE or QRESYNC client's
   * first use): a modseq per message from now on (see mailbox-modseqs.ts).
   * @returns the log range written, or undefined when they were kept already.
   */
  async enableModseqs(): Promise<CommitResult | undefined> {
    return enableModseqs(this);
  }

  /** `fields` of messages `uids`, streamed one at a time (absent UIDs skipped): see mailbox-fetch.ts. */
  fetch<F extends FetchField>(uids: Iterable<number>, fields: readonly F[], options?: FetchOptions): AsyncGenerator<Pick<FetchedMessage, F | "uid">, void, undefined> {
    // fetchMessages' generator itself, not one delegating to it: a yield* costs each message another round of promises (issue #11).
    return fetchMessages(this, uids, fields, options);
  }

  /** The path prefix of this mailbox's index files (`dovecot.index`, `.log`, `.log.2`), as readLog, loadState and exportBundle take it. */
  get indexPrefix(): string {
    return this.backend.indexPrefix;
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
        // The backlog is folded from the state at `from`, so that it speaks the same effects as live batches.
        const upTo = this.position;
        const read = readLog(this.backend.indexPrefix, from);
        const backlog = read.transactions.filter((tx) => !isBefore(upTo, tx.end));
        for (const fx of advanceWithEffects(this.stateAt(from), backlog, read.headers).effects) {
          subscriber.next(changeBatchFromEffects(fx));
          next = fx.end;
        }
      }
      const leaveFanout = this.live.join(subscriber, next);
      const leave = () => {
        leaveFanout();
        this.listenToFolds();
      };
      this.listenToFolds();
      try {
        this.retainExternalFollow();
      } catch (err) {
        leave();
        throw err;
      }
      return () => {
        leave();
        this.releaseExternalFollow();
      };
    });
  }

  /**
   * Runs `fn` under the mailbox's log lock, after the format's commit locks
   * for `intent` (taken in a commit's order: for a change of messages, mdbox
   * holds the map lock, so no purge moves the bodies `fn` reads), with the
   * state caught up to the log's end; another writer (doveadm's expunge
   * among them) waits until it is done. Writes nothing: no commit hooks, no
   * leftovers adopted, no mail-file sync, no checkpoint.
   */
  async withLogLock<T>(fn: (state: IndexMapState) => Promise<T>, intent: CommitIntent): Promise<T> {
    this.checkOpen();
    this.checkWritable();
    const run = () => this.writer.sync((sync) => fn(sync.state), "none");
    return this.backend.withCommitLocks ? this.backend.withCommitLocks(run, intent) : run();
  }

  /** Commits built records under the log lock. Used by MailboxTransaction. */
  async commitWith(
    build: (state: IndexMapState) => Promise<LogTransactionRecords>,
    intent?: CommitIntent,
    options: { pureBuild?: boolean } = {},
  ): Promise<CommitResult | undefined> {
    return this.commitSteps([build], intent, options);
  }

  /**
   * commitWith for records built in steps, each from the state the steps
   * before it appended (a replica's backlog: one primary transaction a
   * step): one hold of the locks, one sync of the mail files and one
   * `afterCommit` for all of them. A step that builds nothing appends
   * nothing. When a step throws, the steps before it stay in the log and
   * `afterCommit` runs for them (one call, their range), then the step's
   * error is thrown, marked as landed when any step landed.
   */
  async commitSteps(
    steps: ReadonlyArray<(state: IndexMapState) => Promise<LogTransactionRecords>>,
    intent?: CommitIntent,
    options: { pureBuild?: boolean } = {},
  ): Promise<CommitResult | undefined> {
    this.checkOpen();
    this.checkWritable();
    const hooks = this.options.commitHooks;
    // Outside the locks: nothing of this commit is built yet, and a failure
    // here runs no backend afterCommit (whose false would drop what the
    // backend keeps for another commit in flight: sdbox's files to delete).
    const confirm = await hooks?.beforeCommitLocks?.(this);
    const commit = () => this.writer.sync(async (sync) => {
      await confirm?.();
      await hooks?.beforeCommit?.(this, sync.state);
      let written: CommitResult | undefined;
      try {
        written = await this.reportingWrites(sync, async () => {
          // What a crashed writer left is logged first, in its own transaction;
          // then the commit is built on top of it, under the same lock.
          const found = (await this.backend.adoptLeftovers?.(sync.state)) ?? [];
          if (found.length > 0) await sync.append(found);
          let appended: CommitResult | undefined;
          try {
            for (const build of steps) {
              const step = await sync.append(await buildOn(sync, build, options.pureBuild === true, this.writer.prefix));
              if (step !== undefined) appended = { start: appended?.start ?? step.start, end: step.end, modseq: step.modseq };
            }
            // Like doveadm, the change reaches the mail files (Maildir names, mbox headers) before the commit returns.
            if (this.backend.syncExternalChanges) await this.syncMailFiles(sync);
          } catch (err) {
            // Steps already in the log: what they saved (an expunge's files
            // to delete among it) is finished as landed, not rolled back.
            if (appended !== undefined) markLandedInLog(err);
            throw err;
          }
          return appended;
        }, false);
      } catch (err) {
        await this.backend.afterCommit?.(isLandedInLog(err));
        throw err;
      }
      // Under the lock that built it: what the backend keeps for this commit (sdbox's
      // files to unlink) is this commit's alone, not also a next commit's built meanwhile.
      await this.backend.afterCommit?.(written !== undefined);
      return written;
    });
    const result = this.backend.withCommitLocks ? await this.backend.withCommitLocks(commit, intent) : await commit();
    if (!result) return undefined;
    return { start: result.start, end: result.end, modseq: result.modseq };
  }

  /**
   * Runs `write` inside `sync`, then the `afterCommit` hook with the range
   * it appended, when it appended anything (`isSync`: a refresh's sync of
   * the mail files, not a commit). When `write` throws after part of it
   * reached the log (a later step of commitSteps), the hook still runs for
   * that part: a hook publishing every commit (replication) must not skip
   * transactions the log keeps; `write`'s error is then the one thrown.
   * @throws what afterCommit throws, marked as landed in the log: what was
   *   written stays (no rollback), and the call still fails; after a
   *   `write` that failed, the hook's error is on that error's `suppressed`.
   */
  private async reportingWrites<T>(sync: IndexSync, write: () => Promise<T>, isSync: boolean): Promise<T> {
    const after = this.options.commitHooks?.afterCommit;
    const start = sync.logHead;
    const modseqBefore = sync.headerState.logModseq;
    const effects: TransactionEffects[] = [];
    if (after) {
      this.foldTap = (fx) => effects.push(fx);
      this.listenToFolds();
    }
    const report = async (end: LogPosition) => {
      if (!after || effects.length === 0) return;
      try {
        const storageLog = this.backend.storageLogAppends?.() ?? [];
        const releaseStorageLock = this.backend.releaseStorageLocks?.bind(this.backend);
        await after(this, {
          start, end, modseqBefore, modseq: sync.headerState.logModseq, effects, state: sync.state, storageLog,
          ...(releaseStorageLock ? { releaseStorageLock } : {}), ...(isSync ? { sync: true } : {}),
        });
      } catch (err) {
        markLandedInLog(err);
        throw err;
      }
    };
    let written: T;
    try {
      written = await write();
    } catch (err) {
      this.stopFoldTap();
      // Up to the last transaction folded: the failing part appended nothing the state (the hook's view) lacks.
      if (effects.length > 0) await cleanupAfter(err, () => report(effects[effects.length - 1].end));
      throw err;
    }
    this.stopFoldTap();
    await report(sync.logHead);
    return written;
  }

  private stopFoldTap(): void {
    this.foldTap = undefined;
    this.listenToFolds();
  }

  /** Number of live change-stream subscribers (for tests of teardown). */
  get liveSubscribers(): number {
    return this.subscriberCount;
  }

  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    try {
      await this.options.commitHooks?.beforeClose?.(this);
    } finally {
      this.closed = true;
      this.externalFollow?.unsubscribe();
      this.externalFollow = undefined;
      this.stopMailFileWatch?.();
      this.stopMailFileWatch = undefined;
      this.live.complete();
      try {
        await this.writer.close();
        await this.backend.close();
      } finally {
        this.onClosed?.(this);
      }
    }
  }

  private retainExternalFollow(): void {
    if (this.subscriberCount++ > 0) return;
    // One watch per mailbox, however many subscribers: it only triggers a catch-up read.
    // From the state's position and modseq (one state: the two must belong together): only what is past it is read.
    const from = this.headerState;
    this.externalFollow = followLog(this.backend.indexPrefix, position(from), from.logModseq).subscribe({
      next: (tx) => {
        // Our own commits come back through the watch too: those are already applied.
        if (!isBefore(this.position, tx.end)) return;
        // A fold that fails (a broken dovecot.index row the log cannot rebuild past, a log
        // another process corrupted) ends the subscribers' streams, not the process.
        try {
          this.writer.refresh();
        } catch (err) {
          this.live.fail(err);
        }
      },
      error: (err) => this.live.fail(err),
    });
    // Mail other programs change without a log (an MDA's delivery, a client's rename): synced when its files change.
    const paths = this.options.readOnly ? [] : (this.backend.mailFilePaths?.() ?? []);
    try {
      if (paths.length > 0) this.stopMailFileWatch = watchMailFiles(paths, () => this.syncChangedMailFiles());
    } catch (err) {
      // The mail files cannot be watched (e.g. EACCES): this subscriber gets the error, and nothing stays behind.
      this.externalFollow?.unsubscribe();
      this.externalFollow = undefined;
      this.subscriberCount--;
      throw err;
    }
  }

  /**
   * A watched mail file changed: sync, so that subscribers see the change as
   * an EXTERNAL transaction. While another process holds the mail lock
   * (Dovecot, an MDA), it tries again shortly; other errors end the streams.
   */
  private async syncChangedMailFiles(): Promise<void> {
    if (this.closed || this.subscriberCount === 0) return;
    try {
      await this.refresh();
    } catch (err) {
      if (this.closed) return;
      if (err instanceof LockTimeoutError) setTimeout(() => void this.syncChangedMailFiles(), 200).unref();
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

  /** @throws MailstoreError UNSUPPORTED when the mailbox was opened read-only. */
  private checkWritable(): void {
    if (this.options.readOnly) throw new MailstoreError("UNSUPPORTED", `mailbox ${this.name} is open read-only`, { path: this.backend.indexPrefix });
  }

  /** Whether the mailbox is closed: close() was called and has run its beforeClose hook. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Whether close() was called, finished or not (its beforeClose hook may still be waiting). */
  get isClosing(): boolean {
    return this.closing !== undefined;
  }

  private checkOpen(): void {
    if (this.closed) throw new MailstoreError("INVALID_ARGUMENT", `mailbox ${this.name} is closed`);
  }
}

export type LogTransactionRecords = ReadonlyArray<ReadonlyArray<LogRecord>>;

/** What a commit wrote. */
export interface CommitResult {
  start: LogPosition;
  end: LogPosition;
  modseq: bigint;
}

export { SubscriberOverflowError };


/**
 * `build`'s records from the sync's state. `pure`: the build only reads the
 * state (flag changes: no message files written, no backend called), so it
 * runs on the state whose rows may not have been read yet (a flag of one
 * message reads two leaves of dovecot.index, not all of it); when a row it
 * reads is broken, the writer loads the state again (sync.state does) and
 * the build runs again on that, as if the open had found the broken row.
 */
async function buildOn(
  sync: IndexSync,
  build: (state: IndexMapState) => Promise<LogTransactionRecords>,
  pure: boolean,
  prefix: string,
): Promise<LogTransactionRecords> {
  if (!pure) return build(sync.state);
  const state = sync.headerState;
  let records: LogTransactionRecords;
  try {
    records = await build(state);
  } catch (err) {
    if (!isUnreadRowBroken(err, state, prefix)) throw err;
    return build(sync.state);
  }
  // Nothing to log, decided on rows checked alone: a flags byte that is wrong (which only
  // the seen/deleted counters, checked once every row is read, can show) would drop the
  // change for good. Decided again on the state whose rows are all read and checked.
  if (state.records.unread && records.every((t) => t.length === 0)) return build(sync.state);
  return records;
}

/**
 * `err` is a broken row of `prefix` (the mailbox's dovecot.index) read from
 * `state`'s rows not read before: what the loaded state recovers from.
 * Corruption of any other file (the cache, mdbox's map) is not retried.
 */
function isUnreadRowBroken(err: unknown, state: IndexMapState, prefix: string): boolean {
  return err instanceof IndexCorruptedError && err.path === prefix && state.records.unread;
}
