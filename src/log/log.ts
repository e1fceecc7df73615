import { CallScope } from "../shared/call-scope.js";
import * as fs from "node:fs";
import { InvalidArgumentError, LogCorruptedError, MailstoreError } from "../shared/errors.js";
import { writeNewFile, writePrivateFile } from "../shared/file-mode.js";
import { prepareAppend, writeAt, type AppendCursor } from "./append.js";
import { ByteWriter } from "./bytes.js";
import { encodeTransactionInto } from "./encode-file.js";
import { parseLogBytes, scanTransactions } from "./file.js";
import { decodeLogHeader, encodeLogHeader } from "./header.js";
import { LogLockLostError, lockExclusive, tryLockExclusive, unlockFile } from "./lock.js";
import {
  acquireFileMutex, acquireLogFile, inodeAt, readRange, readWhole, releaseLogFile, retainLogFile, withFileMutex, type SharedLogFile,
} from "./shared-file.js";
import type { LogFileHeader, LogPosition, LogRecord, LogTransaction } from "./types.js";
import { HEAD_SUFFIX, ROTATED_SUFFIX, readLog, type LogReadResult } from "./view.js";

/**
 * When a commit reaches the disk:
 * - "always": fdatasync after every commit;
 * - "optimized": Dovecot's default (mail_fsync=optimized): only commits that
 *   append or expunge messages are synced;
 * - "batch": group commit: commits that arrive together share one fdatasync,
 *   each commit still resolves only after it is durable;
 * - "never": leave it to the kernel.
 */
export type FsyncMode = "always" | "optimized" | "batch" | "never";

/**
 * The log files whose lock (in-process mutex + fcntl lock) one withLock()
 * call holds for the async call chain running inside it. Scopes nest (a
 * mailbox commit inside the mdbox map's lock); a file locked by an outer
 * scope is held by every inner one. A rotation inside a scope adds the new
 * head to the scope that held the old one, which releases both at its end.
 */
interface LockScope {
  readonly parent: LockScope | undefined;
  readonly files: Set<SharedLogFile>;
  /** Releases of files added by rotations (run at the scope's end, newest first). */
  readonly onExit: Array<() => Promise<void>>;
}

const heldLocks = new CallScope<LockScope>();

/** What holdLock gives `fn` when it re-entered a lock an outer scope holds: that scope lets it go. */
const heldByOuterScope = async (): Promise<void> => undefined;

function scopeHolding(scope: LockScope | undefined, file: SharedLogFile): LockScope | undefined {
  for (let s = scope; s; s = s.parent) if (s.files.has(file)) return s;
  return undefined;
}

/** Dovecot's defaults (mail_index_log_rotate_*). */
export const DEFAULT_ROTATE = { minSizeBytes: 32 * 1024, maxSizeBytes: 1024 * 1024, minAgeSeconds: 300 };

export interface LogOptions {
  fsync?: FsyncMode;
  /** How long to wait for the log lock; Dovecot waits up to 3 minutes. */
  lockTimeoutMs?: number;
  rotate?: Partial<typeof DEFAULT_ROTATE>;
  /** Create the log when it does not exist. */
  create?: CreateLogOptions;
}

export interface CreateLogOptions {
  /** Shared with dovecot.index and the cache; defaults to the current UNIX time. */
  indexId?: number;
  fileSeq?: number;
  initialModseq?: bigint;
  /** Records written first, unframed, e.g. a storage's initial ext intro + header. */
  initialRecords?: LogRecord[];
  /**
   * Transactions after them (framed as appends are), in the same file:
   * it is synced once, whole, before it is linked in place (a mailbox a
   * rebuild creates with its messages).
   */
  transactions?: ReadonlyArray<readonly LogRecord[]>;
}

/** A log file this process just created: its header, transactions and end. */
export interface CreatedLog {
  readonly header: LogFileHeader;
  readonly transactions: LogTransaction[];
  readonly end: KnownLogEnd;
}

/**
 * Where the caller already knows the head log ends (it just read the log up
 * to there, e.g. loading a mailbox's state): open() then reads only the
 * header instead of the whole file.
 */
export interface KnownLogEnd {
  readonly position: LogPosition;
  /** The running modseq at `position`. */
  readonly modseq: bigint;
}

/**
 * The record that moves dovecot.index's log_file_tail_offset to `tailOffset`
 * (built by the index layer, which knows the header's layout).
 */
export type TailOffsetRecord = (tailOffset: number) => LogRecord;

/** Options of one transact() call. */
export interface TransactOptions {
  /**
   * Ends the write with an EXTERNAL header update of log_file_tail_offset
   * pointing just past itself, as Dovecot's syncing commits do
   * (log_append_sync_offset_if_needed): everything up to there is in the
   * mail files. Written even when `build` returns nothing.
   */
  readonly syncTail?: TailOffsetRecord;
}

/** Transactions catchUp() read that the owner has not taken yet, and where they start. */
export interface NewTransactions {
  readonly from: LogPosition;
  readonly transactions: LogTransaction[];
}

/** What one append wrote. */
export interface AppendResult {
  /** Position of the first written byte. */
  start: LogPosition;
  /** Position just past the last written byte. */
  end: LogPosition;
  /** Running modseq after the last transaction. */
  modseq: bigint;
  /** The written transactions, decoded, with their positions and modseqs. */
  transactions: LogTransaction[];
}

/**
 * A transaction log (`<prefix>.log` and `<prefix>.log.2`) that Dovecot can
 * share: appends take Dovecot's fcntl lock on `.log`, pick up whatever other
 * processes appended first, write each batch with one pwrite, and rotate the
 * way Dovecot does.
 */
export class TransactionLog {
  readonly prefix: string;
  private head: SharedLogFile;
  private cursor: AppendCursor;
  private readonly fsyncMode: FsyncMode;
  private readonly lockTimeoutMs: number;
  private readonly rotateRules: typeof DEFAULT_ROTATE;
  private pendingSync: Promise<void> | undefined;
  private closed = false;
  /**
   * Bytes after the last complete transaction seen by catchUp() under the
   * lock: the file's size then. Cut off only right before our own write, and
   * only if the lock is confirmed and the size has not moved since.
   */
  private tornTailSize: number | undefined;
  /**
   * What catchUp() decoded since the owner last took it (see
   * collectNewTransactions), so that a catch-up is not read twice; null when
   * the chain broke (another process rotated the log) and the owner must
   * read the log itself; undefined when nobody collects.
   */
  private unseen: NewTransactions | null | undefined;

  private constructor(prefix: string, head: SharedLogFile, cursor: AppendCursor, options: LogOptions) {
    this.prefix = prefix;
    this.head = head;
    this.cursor = cursor;
    this.fsyncMode = options.fsync ?? "optimized";
    this.lockTimeoutMs = options.lockTimeoutMs ?? 180_000;
    this.rotateRules = { ...DEFAULT_ROTATE, ...options.rotate };
  }

  /**
   * Opens `<prefix>.log`, creating it (when `options.create` is given and it
   * is missing) atomically: a complete file is linked into place, so no
   * process ever sees a half-written header.
   */
  static open(prefix: string, options: LogOptions & { knownEnd?: KnownLogEnd } = {}): TransactionLog {
    const headPath = prefix + HEAD_SUFFIX;
    if (options.create && inodeAt(headPath) === undefined) createLogFile(headPath, options.create, options.fsync !== "never");
    const head = acquireLogFile(headPath);
    try {
      return new TransactionLog(prefix, head, openCursor(head, headPath, options.knownEnd), options);
    } catch (err) {
      releaseLogFile(head);
      throw err;
    }
  }

  /** Creates `<prefix>.log` (atomically, see open()) unless it exists. */
  static createIfMissing(prefix: string, create: CreateLogOptions, fsync: FsyncMode = "optimized"): void {
    const headPath = prefix + HEAD_SUFFIX;
    if (inodeAt(headPath) === undefined) createLogFile(headPath, create, fsync !== "never");
  }

  /**
   * createIfMissing(), also handing back what the new file holds, decoded
   * as a reader would (records that decode to themselves are not decoded,
   * see codec.ts decodesToItself): its owner folds that instead of reading it back.
   * @returns undefined when the log existed or another process created it first.
   */
  static createIfMissingDecoded(prefix: string, create: CreateLogOptions, fsync: FsyncMode = "optimized"): CreatedLog | undefined {
    const headPath = prefix + HEAD_SUFFIX;
    const bytes = inodeAt(headPath) === undefined ? createLogFile(headPath, create, fsync !== "never") : undefined;
    return bytes && decodeCreated(bytes, create, headPath);
  }

  get headPath(): string {
    return this.prefix + HEAD_SUFFIX;
  }

  /** The head file's header as last seen. */
  get header(): LogFileHeader {
    return this.cursor.header;
  }

  /** End of the data this object has seen (not re-read). */
  get headPosition(): LogPosition {
    return { fileSeq: this.cursor.header.fileSeq, offset: this.cursor.syncOffset };
  }

  get highestModseq(): bigint {
    return this.cursor.modseq;
  }

  /**
   * From now on, keeps what catchUp() reads for takeNewTransactions(): the
   * owner of a state folds it instead of reading the log again.
   */
  collectNewTransactions(): void {
    this.unseen = { from: this.headPosition, transactions: [] };
  }

  /**
   * What was caught up since the last call (or since collecting began),
   * or undefined when the chain broke (another process rotated the log in
   * between): then the caller reads the log from its own position.
   */
  takeNewTransactions(): NewTransactions | undefined {
    const got = this.unseen;
    if (this.unseen !== undefined) this.unseen = { from: this.headPosition, transactions: [] };
    return got ?? undefined;
  }

  /**
   * Picks up what other processes appended, without the lock: a reader's
   * refresh (Dovecot's mail_index_refresh). An incomplete transaction at the
   * end is left for later.
   */
  readNew(): void {
    this.checkOpen();
    if (!this.headIsAtPath()) this.followRotation();
    this.catchUp();
  }

  /** Reads complete transactions from `from` (default: the oldest file's start). */
  read(from?: LogPosition): LogReadResult {
    this.checkOpen();
    return readLog(this.prefix, from);
  }

  /** Appends one transaction. See appendTransactions. */
  append(records: LogRecord[]): Promise<AppendResult> {
    return this.appendTransactions([records]);
  }

  /**
   * Appends transactions in one write under the log lock. Records are written
   * in the order given (the caller orders them as Dovecot does); each
   * transaction with more than one record is framed by a BOUNDARY.
   */
  async appendTransactions(transactions: ReadonlyArray<readonly LogRecord[]>): Promise<AppendResult> {
    if (!transactions.some((t) => t.length > 0)) throw new InvalidArgumentError("empty transaction");
    return (await this.transact(async () => transactions))!;
  }

  /**
   * Runs `build` holding the log lock, after catching up with other writers,
   * and appends the transactions it returns (none: nothing is written). This
   * is where a mailbox allocates UIDs and moves message files: nobody else can
   * commit between `build` looking at the log and its records landing.
   */
  async transact(build: () => Promise<ReadonlyArray<readonly LogRecord[]>>, options: TransactOptions = {}): Promise<AppendResult | undefined> {
    this.checkOpen();
    let needsSync = false;
    const result = await this.withLock(async () => {
      const transactions = await build();
      if (!transactions.some((t) => t.length > 0) && !options.syncTail) return undefined;
      needsSync = this.commitNeedsSync(transactions);
      const prepared = prepareAppend(this.cursor, transactions, this.headPath, options.syncTail);
      await this.confirmLockBeforeWrite();
      const start = this.headPosition;
      writeAt(this.head.fd, prepared.bytes, this.cursor.syncOffset);
      this.cursor = prepared.end;
      // Our own write is the caller's to fold (AppendResult): the unseen chain continues after it.
      if (this.unseen) this.unseen = this.unseen.transactions.length === 0 ? { from: this.headPosition, transactions: [] } : null;
      if (needsSync && this.fsyncMode !== "batch") fs.fdatasyncSync(this.head.fd);
      return { start, end: this.headPosition, modseq: this.cursor.modseq, transactions: prepared.decoded };
    });
    if (result && needsSync && this.fsyncMode === "batch") await this.groupSync();
    return result;
  }

  /**
   * Runs `fn` holding this log's lock without writing anything itself:
   * transact() calls on the same file inside `fn` (from any TransactionLog
   * object of this process) re-enter it instead of waiting. This is how a
   * caller takes locks in a fixed order (Dovecot locks the mdbox map before
   * a mailbox).
   * `fn` gets `release`, which lets the lock go before `fn` ends (a commit
   * that keeps an inner lock while it waits on something slow): from then
   * on its call chain holds it no more, and a write there would lock it
   * again. A no-op when an outer scope held the lock already (re-entered:
   * that scope releases it).
   */
  async holdLock<T>(fn: (release: () => Promise<void>) => Promise<T>, options: { lockTimeoutMs?: number } = {}): Promise<T> {
    this.checkOpen();
    return this.withLock(fn, options.lockTimeoutMs);
  }

  /** Picks up what other processes appended, without writing. */
  async refresh(): Promise<LogPosition> {
    this.checkOpen();
    await this.withLock(async () => undefined);
    return this.headPosition;
  }

  /**
   * Whether Dovecot's rules would rotate now: over maxSize, or over minSize
   * and older than minAge.
   */
  shouldRotate(nowSeconds = Math.floor(Date.now() / 1000)): boolean {
    const size = this.cursor.syncOffset;
    const r = this.rotateRules;
    if (size > r.maxSizeBytes) return true;
    return size >= r.minSizeBytes && this.cursor.header.createStamp < nowSeconds - r.minAgeSeconds;
  }

  /**
   * Rotates as Dovecot does, under the lock: a new `.log` (file_seq + 1,
   * prev = old seq and size, initial_modseq = old final modseq) is prepared
   * as `.log.newlock`, the old `.log` is hard-linked to `.log.2`, and the new
   * file is renamed over `.log`. The caller should then checkpoint
   * dovecot.index so that it points at the new file.
   */
  async rotate(): Promise<LogFileHeader> {
    this.checkOpen();
    return this.withLock(() => this.rotateLocked());
  }

  /**
   * rotate() for callers already inside transact() or holdLock(), which hold
   * the lock. The new `.log` is locked (fcntl and in-process mutex) before it
   * is renamed into place, and stays locked until the scope that held the old
   * one ends: nobody, in this process or another, can write to it before the
   * caller is done. Called without the lock, it takes it (as rotate()).
   */
  async rotateLocked(): Promise<LogFileHeader> {
    this.checkOpen();
    const scope = heldLocks.getStore();
    if (scopeHolding(scope, this.head) && !this.headIsAtPath()) {
      // A sibling object in this scope rotated already: continue from its file.
      this.followRotation();
      this.catchUp();
    }
    const owner = scopeHolding(scope, this.head);
    if (!owner) return this.rotate();
    await this.confirmLockBeforeWrite();
    const old = this.cursor;
    const header: LogFileHeader = {
      ...old.header,
      hdrSize: 40,
      minorVersion: 3,
      fileSeq: old.header.fileSeq + 1,
      prevFileSeq: old.header.fileSeq,
      prevFileOffset: old.syncOffset,
      createStamp: Math.floor(Date.now() / 1000),
      initialModseq: old.modseq,
    };
    const tmpPath = this.headPath + ".newlock";
    // Private while we hold the log lock: one left by a rotation killed before its rename is removed
    // (else every rotation would fail with EEXIST).
    writePrivateFile(tmpPath, encodeLogHeader(header), this.fsyncMode !== "never");
    const next = acquireLogFile(tmpPath);
    // A brand-new inode: nobody else can hold its mutex yet.
    const releaseMutex = await acquireFileMutex(next);
    try {
      await lockExclusive(next.fd, tmpPath, this.lockTimeoutMs);
      const rotatedPath = this.prefix + ROTATED_SUFFIX;
      fs.rmSync(rotatedPath, { force: true });
      fs.linkSync(this.headPath, rotatedPath);
      fs.renameSync(tmpPath, this.headPath);
    } catch (err) {
      releaseMutex();
      releaseLogFile(next);
      fs.rmSync(tmpPath, { force: true });
      throw err;
    }
    // The scope's reference keeps next's descriptor open until it is unlocked.
    retainLogFile(next);
    owner.files.add(next);
    owner.onExit.push(async () => {
      try {
        await unlockFile(next.fd);
      } finally {
        releaseMutex();
        releaseLogFile(next);
      }
    });
    // The old file is no longer the head: let Dovecot processes waiting on
    // it go on (they see the new inode and switch). Its descriptor stays
    // open as long as the scope that locked it holds its reference.
    await unlockFile(this.head.fd);
    releaseLogFile(this.head);
    this.head = next;
    this.cursor = { header, syncOffset: header.hdrSize, modseq: header.initialModseq };
    this.tornTailSize = undefined;
    // The caller enters the new file itself (enterLogFile); nothing in it to read.
    if (this.unseen !== undefined) this.unseen = this.unseen?.transactions.length === 0 ? { from: this.headPosition, transactions: [] } : null;
    return header;
  }

  /** Another reference to the head file as it is now (the caller releases it), e.g. to keep its inode from being reused. */
  retainHead(): SharedLogFile {
    this.checkOpen();
    return retainLogFile(this.head);
  }

  /** Waits for a pending group fsync, then releases the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.pendingSync;
    await withFileMutex(this.head, async () => undefined);
    this.closed = true;
    releaseLogFile(this.head);
  }

  private checkOpen(): void {
    if (this.closed) throw new MailstoreError("INVALID_ARGUMENT", "the log is closed", { path: this.headPath });
  }

  private commitNeedsSync(transactions: ReadonlyArray<readonly LogRecord[]>): boolean {
    if (this.fsyncMode === "never") return false;
    if (this.fsyncMode !== "optimized") return true;
    return transactions.some((t) =>
      t.some((r) => r.type === "append" || r.type === "expunge" || r.type === "expunge-guid"),
    );
  }

  /** One fdatasync shared by every commit that joins before it starts. */
  private groupSync(): Promise<void> {
    if (this.pendingSync) return this.pendingSync;
    // Held until the sync is done: a rotation meanwhile must not close the
    // descriptor (its number could be reused by another file).
    const file = retainLogFile(this.head);
    this.pendingSync = new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.pendingSync = undefined;
        fs.fdatasync(file.fd, (err) => {
          releaseLogFile(file);
          if (err) reject(err);
          else resolve();
        });
      });
    });
    return this.pendingSync;
  }

  /**
   * Runs `fn` holding the in-process mutex and the fcntl lock on the current
   * `.log`, with the cursor caught up to the file's end. If the file was
   * rotated by someone else meanwhile, follows the rotation first.
   */
  private async withLock<T>(fn: (release: () => Promise<void>) => Promise<T>, lockTimeoutMs = this.lockTimeoutMs): Promise<T> {
    const scope = heldLocks.getStore();
    if (scopeHolding(scope, this.head)) {
      // This async call chain already holds this file's lock (a commit that
      // locks the mdbox map first, then writes it): re-entering is safe, once
      // this object has followed a rotation made by a sibling in the scope.
      if (!this.headIsAtPath()) this.followRotation();
      if (scopeHolding(scope, this.head)) {
        this.catchUp();
        return fn(heldByOuterScope);
      }
      // The path moved to a file this scope never locked: lock it below.
    }
    for (;;) {
      // Our own reference: the descriptor stays open (and its number ours)
      // until the lock taken through it is released, whatever this.head becomes.
      const file = retainLogFile(this.head);
      const releaseMutex = await acquireFileMutex(file);
      const inner: LockScope = { parent: scope, files: new Set([file]), onExit: [] };
      let locked = false;
      let released = false;
      const release = async (): Promise<void> => {
        if (released) return;
        released = true;
        // Held no more by this call chain, early or at its end: a later write in it locks again.
        inner.files.clear();
        try {
          // Files a rotation locked inside fn, newest first, then this one.
          for (const releaseRotated of inner.onExit.reverse()) await releaseRotated();
          if (locked) await unlockFile(file.fd);
        } finally {
          releaseMutex();
          releaseLogFile(file);
        }
      };
      try {
        if (file !== this.head) continue;
        await lockExclusive(file.fd, this.headPath, lockTimeoutMs);
        locked = true;
        if (!this.headIsAtPath()) {
          await unlockFile(file.fd);
          locked = false;
          this.followRotation();
          continue;
        }
        this.catchUp();
        return await heldLocks.run(inner, () => fn(release));
      } finally {
        await release();
      }
    }
  }

  /** Whether `.log` is still the inode this object reads and writes. */
  private headIsAtPath(): boolean {
    const current = inodeAt(this.headPath);
    return current !== undefined && current.ino === this.head.ino && current.dev === this.head.dev;
  }

  /** Another process rotated or recreated `.log`: switch to the new file. */
  private followRotation(): void {
    const next = acquireLogFile(this.headPath);
    let parsed;
    try {
      parsed = parseLogBytes(readWhole(next), this.headPath);
    } catch (err) {
      releaseLogFile(next);
      throw err;
    }
    releaseLogFile(this.head);
    this.head = next;
    this.cursor = { header: parsed.header, syncOffset: parsed.syncOffset, modseq: parsed.endModseq };
    this.tornTailSize = undefined;
    // What the old file held past our cursor was not read: the owner reads the log itself.
    if (this.unseen !== undefined) this.unseen = null;
  }

  /**
   * Called with the lock held: reads what others appended since our cursor.
   * Bytes after the last complete transaction are only noted, never cut here:
   * a read-only refresh must not change the file, and if our lock was lost
   * (a descriptor of the file closed elsewhere in the process) they are
   * another writer's transaction still being written. confirmLockBeforeWrite
   * cuts them when that is certain.
   */
  private catchUp(): void {
    const size = fs.fstatSync(this.head.fd).size;
    if (size < this.cursor.syncOffset) {
      throw new LogCorruptedError(`log shrank below its known end ${this.cursor.syncOffset}`, {
        path: this.headPath, fileSeq: this.cursor.header.fileSeq, offset: size,
      });
    }
    this.tornTailSize = undefined;
    if (size === this.cursor.syncOffset) return;
    const tail = readRange(this.head, this.cursor.syncOffset, size);
    const collected = this.unseen?.transactions;
    const scan = scanTransactions(tail, this.cursor.header, this.headPath, collected ? (tx) => collected.push(tx) : () => undefined, {
      offset: this.cursor.syncOffset,
      modseq: this.cursor.modseq,
      delta: this.cursor.syncOffset,
    });
    this.cursor = { header: this.cursor.header, syncOffset: scan.syncOffset, modseq: scan.modseq };
    if (scan.syncOffset < size) this.tornTailSize = size;
  }

  /**
   * Right before writing at the cursor: proves that nobody else wrote since
   * catchUp(), and that the lock is still ours. F_SETLK fails if another
   * process holds the lock (ours was lost); and if ours was lost and nobody
   * holds it now, it takes it back, but then the file's size shows whether
   * someone appended meanwhile. Then, and only then, a torn tail that was
   * already there when we locked (Dovecot's rule: with the lock held, bytes
   * after the last complete record are a crashed writer's garbage) is cut.
   * @throws LogLockLostError, having written nothing.
   */
  private async confirmLockBeforeWrite(): Promise<void> {
    const where = { path: this.headPath, fileSeq: this.cursor.header.fileSeq, offset: this.cursor.syncOffset };
    if (!(await tryLockExclusive(this.head.fd))) {
      throw new LogLockLostError("another process holds the lock we were writing under", where);
    }
    if (!this.headIsAtPath()) {
      throw new LogLockLostError("the log was rotated or recreated by another process while we held its lock", where);
    }
    const size = fs.fstatSync(this.head.fd).size;
    if (size === this.cursor.syncOffset) return;
    if (size > this.cursor.syncOffset && size === this.tornTailSize) {
      fs.ftruncateSync(this.head.fd, this.cursor.syncOffset);
      this.tornTailSize = undefined;
      return;
    }
    throw new LogLockLostError(
      `the log changed under our lock (size ${size}, expected ${this.tornTailSize ?? this.cursor.syncOffset})`, where,
    );
  }
}

/**
 * The append cursor of a freshly opened head file: from `known` when it is
 * in this file and not past its end (only the header is read), else by
 * reading the whole file.
 */
function openCursor(head: SharedLogFile, headPath: string, known: KnownLogEnd | undefined): AppendCursor {
  if (known) {
    const header = decodeLogHeader(readRange(head, 0, LOG_HEADER_PEEK), headPath);
    const size = fs.fstatSync(head.fd).size;
    if (header.fileSeq === known.position.fileSeq && known.position.offset >= header.hdrSize && known.position.offset <= size) {
      return { header, syncOffset: known.position.offset, modseq: known.modseq };
    }
  }
  const parsed = parseLogBytes(readWhole(head), headPath);
  return { header: parsed.header, syncOffset: parsed.syncOffset, modseq: parsed.endModseq };
}

/** Bytes read to decode a log header (Dovecot's is 40; a longer one is skipped by its hdr_size). */
const LOG_HEADER_PEEK = 64;

/**
 * Writes a complete new log file at `path` unless one is already there.
 * @returns the bytes written, or undefined when someone else created the file first.
 */
function createLogFile(path: string, options: CreateLogOptions, sync: boolean): Uint8Array | undefined {
  const now = Math.floor(Date.now() / 1000);
  const header = encodeLogHeader({
    indexId: options.indexId ?? now,
    fileSeq: options.fileSeq ?? 1,
    prevFileSeq: 0,
    prevFileOffset: 0,
    createStamp: now,
    initialModseq: options.initialModseq ?? 1n,
  });
  const out = new ByteWriter(256);
  out.raw(header);
  // Dovecot writes a storage's initial extension records without a boundary.
  for (const record of options.initialRecords ?? []) encodeTransactionInto([record], out, false);
  for (const records of options.transactions ?? []) if (records.length > 0) encodeTransactionInto(records, out);
  const bytes = out.result();
  const tmpPath = `${path}.newlock.${process.pid}`;
  writeNewFile(tmpPath, bytes, sync);
  try {
    fs.linkSync(tmpPath, path);
    return bytes;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    // Someone else created it first: theirs is as good as ours.
    return undefined;
  } finally {
    fs.rmSync(tmpPath, { force: true });
  }
}

/** A new log file's bytes scanned back, its own records standing for their bytes (as an append's are). */
function decodeCreated(bytes: Uint8Array, options: CreateLogOptions, path: string): CreatedLog {
  const header = decodeLogHeader(bytes, path);
  // The scan's entries, one for one: each initial record alone, then each transaction's records.
  const written: LogRecord[] = [...(options.initialRecords ?? [])];
  for (const records of options.transactions ?? []) for (const r of records) written.push(r);
  const transactions: LogTransaction[] = [];
  const end = scanTransactions(bytes, header, path, (tx) => transactions.push(tx), undefined, { written });
  return { header, transactions, end: { position: { fileSeq: header.fileSeq, offset: end.syncOffset }, modseq: end.modseq } };
}
