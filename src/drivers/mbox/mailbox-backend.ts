/**
 * One mbox mailbox: the mbox file holds the messages and, in its headers,
 * their UIDs and flags (maildir-mbox.md Part B); the index under
 * `.imap/<mailbox>/` is the log of what the engine and Dovecot know.
 *
 * Flag and keyword changes are logged as requests (internal records) by the
 * transaction, then written into Status/X-Status/X-Keywords by the next
 * sync — refresh() runs it — as Dovecot's sync does; saves append to the file
 * before the log records them; expunges rewrite the file in place (in-place.ts) and
 * log EXTERNAL expunges. Changes made by other programs (an MDA appending,
 * a client deleting) are found by comparing the file with the `mbox` index
 * header, which costs one stat() when nothing changed.
 *
 * Lock order, as Dovecot's: the mbox (dotlock, then fcntl) before the
 * mailbox log. Commits get it through `withCommitLocks`, which Mailbox calls
 * before taking the log lock; the save or expunge inside then uses that hold.
 * The other order would deadlock with Dovecot — a Dovecot save holds the
 * dotlock and then wants the log lock, `doveadm flags` holds an fcntl read
 * lock while it commits to the log (both observed in
 * test/interop/mbox-concurrent.test.ts) — so where Mailbox does call us under
 * the log lock without that hook (refresh), we only try the mbox lock: a
 * sync that cannot have it at once is skipped until the next refresh. Saves
 * or expunges called outside a commit (not by Mailbox) wait briefly
 * (`writeLockTimeoutMs`, `dotlockTimeoutMs`: 1 s) and fail with
 * LockTimeoutError rather than risk that deadlock.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LockTimeoutError, MailCorruptedError, MailstoreError } from "../../shared/errors.js";
import { type LogRecord } from "../../log/types.js";
import { getHeader, position } from "../../projections/read.js";
import type { IndexMapState } from "../../projections/state.js";
import { guid128StringUnlessEmpty } from "../dbox/guid.js";
import type { ExternalSyncOptions, FileSyncResult, MailboxBackend, MailboxHeaderUpdate, NewMessage, PreparedSave, StoredMessageInfo } from "../driver.js";
import { expungeInSync } from "./expunge-in-sync.js";
import { headerBlock, MessageCursor } from "./file-messages.js";
import { mboxHeaderMd5, md5Hex } from "./header-md5.js";
import { mboxHeaderRecords, newMboxSyncHeader, readMboxSyncHeader } from "./index-ext.js";
import { pendingChanges, pendingChangesOf, type IndexedMessage } from "./index-view.js";
import { MBOX_REDO_JOURNAL } from "./redo-journal.js";
import { openMboxFile, releaseMboxFile, type MboxFile, type MboxLockOptions, type WriteHold } from "./mbox-file.js";
import { LOCATE_WINDOW_BYTES, locateMessage } from "./read.js";
import { saveToMbox, savedHeaderMd5 } from "./save.js";
import { updateMboxFile } from "./update.js";
import { scanMbox, type MboxMessage } from "./scan.js";
import { FileSource, type ByteSource } from "./source.js";
import { fileMatchesIndex, fileSyncStamp, fullSync, quickSync } from "./sync.js";
import { mboxMessageText, visibleHeaderRanges } from "./text.js";

/** Lock waits (see the module comment on lock order) and tuning. */
export interface MboxMailboxOptions {
  /** Reading, and commits (before the log lock): another process's locks (ms, default 60 s). */
  lockTimeoutMs?: number;
  /** Saving/expunging outside a commit: another process's fcntl lock (ms, default 1 s). */
  writeLockTimeoutMs?: number;
  /** Saving/expunging outside a commit: another process's dotlock (ms, default 1 s). */
  dotlockTimeoutMs?: number;
  /** Bytes an in-place rewrite reads per write (default 8 MiB; crash tests use small ones). */
  rewriteWindowBytes?: number;
  /** fdatasync the mbox after writing it (default true; false for the storage's fsync "never"). */
  fsync?: boolean;
}

/** Default waits for the mbox locks (Dovecot waits up to mbox_lock_timeout, 5 min). */
const DEFAULT_LOCK_TIMEOUT_MS = 60_000;
const DEFAULT_WRITE_LOCK_TIMEOUT_MS = 1_000;
const DEFAULT_DOTLOCK_TIMEOUT_MS = 1_000;

/** See the module comment. */
/**
 * The message locate() found last, with what was worked out about it while
 * the file stands still: a fetch of a message's identity and then its bytes
 * walks its header once for both, and hashes it at most once.
 */
interface LocatedMessage {
  readonly uid: number;
  readonly stamp: string;
  readonly state: IndexMapState;
  readonly src: ByteSource;
  readonly msg: MboxMessage;
  headerMd5?: Uint8Array;
  visible?: ReadonlyArray<readonly [number, number]>;
}

/** The visible header lines of a located message (text.ts), worked out once. */
function visibleRangesOf(found: LocatedMessage): ReadonlyArray<readonly [number, number]> {
  return (found.visible ??= visibleHeaderRanges(found.src, found.msg));
}

export class MboxMailboxBackend implements MailboxBackend {
  readonly indexPrefix: string;
  readonly keepsIndexBackup = false;
  private readonly file: MboxFile;
  private readonly lockTimeoutMs: number;
  private readonly fsync: boolean | undefined;
  private readonly windowBytes: number | undefined;
  private readonly writeLock: MboxLockOptions;
  /**
   * The write hold, shared by its users: a commit (withCommitLocks), a save
   * until its transaction ends, an expunge. All of them run under the log
   * lock in turn, so sharing it never interleaves two writers.
   */
  private hold: WriteHold | undefined;
  private holdUsers = 0;
  private acquiring: Promise<WriteHold> | undefined;
  /** Messages saved by the transaction being committed (for an expunge in the same transaction). */
  private saved: IndexedMessage[] = [];
  private closed = false;
  private lastLocated: LocatedMessage | undefined;

  constructor(readonly mboxPath: string, readonly indexDir: string, opts: MboxMailboxOptions = {}) {
    this.indexPrefix = path.join(indexDir, "dovecot.index");
    this.file = openMboxFile(mboxPath, path.join(indexDir, MBOX_REDO_JOURNAL));
    this.lockTimeoutMs = opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    this.fsync = opts.fsync;
    this.windowBytes = opts.rewriteWindowBytes;
    this.writeLock = {
      timeoutMs: opts.writeLockTimeoutMs ?? DEFAULT_WRITE_LOCK_TIMEOUT_MS,
      dotlockTimeoutMs: opts.dotlockTimeoutMs ?? DEFAULT_DOTLOCK_TIMEOUT_MS,
    };
  }

  /**
   * The `mbox` extension with a fresh mailbox GUID, and UIDVALIDITY — the
   * file's own when its first message has X-IMAPbase (Dovecot resets an
   * index whose UIDVALIDITY disagrees with the file's).
   */
  initialRecords(uidValidity: number): LogRecord[] {
    const fileValidity = this.fileUidValidity();
    const validity = new Uint8Array(4);
    new DataView(validity.buffer).setUint32(0, fileValidity ?? uidValidity, true);
    return [...mboxHeaderRecords(newMboxSyncHeader()), { type: "header-update", external: true, sync: false, patches: [{ offset: 24, data: validity }] }];
  }

  /** Dovecot's lock order: the mbox before the log (see the module comment). */
  async withCommitLocks<T>(fn: () => Promise<T>): Promise<T> {
    await this.retain({ timeoutMs: this.lockTimeoutMs });
    try {
      return await fn();
    } finally {
      await this.release();
    }
  }

  async saveMessages(state: IndexMapState, messages: readonly NewMessage[], uids: readonly number[]): Promise<PreparedSave> {
    const hold = await this.retain(this.writeLock);
    let outcome;
    try {
      outcome = await saveToMbox(hold, state, messages, uids);
    } catch (err) {
      await this.release();
      throw err;
    }
    this.saved.push(...outcome.saved);
    let ended = false;
    const end = async (undo: boolean) => {
      if (ended) return;
      ended = true;
      this.saved = [];
      try {
        if (undo) outcome.undo();
      } finally {
        await this.release();
      }
    };
    return { records: outcome.records, commit: () => end(false), rollback: () => end(true) };
  }

  /** X-IMAPbase or the pseudo message follow the index header (update.ts). */
  async updateMailbox(state: IndexMapState, update: MailboxHeaderUpdate): Promise<LogRecord[]> {
    const hold = await this.retain(this.writeLock);
    try {
      return updateMboxFile(hold, state, update);
    } finally {
      await this.release();
    }
  }

  async expungeMessages(state: IndexMapState, uids: readonly number[]): Promise<LogRecord[]> {
    const hold = await this.retain(this.writeLock);
    try {
      const pending = pendingChanges(this.indexPrefix, state);
      const expunge = new Set(uids);
      // Messages saved earlier in this transaction are not in the index the fast path reads.
      const fast = this.saved.length === 0 ? expungeInSync(hold, state, pending, expunge, this.tuning()) : undefined;
      return fast ?? fullSync(hold, state, pending, { expunge, extraIndexed: this.saved, ...this.tuning() });
    } finally {
      await this.release();
    }
  }

  async readMessage(state: IndexMapState, uid: number): Promise<Uint8Array> {
    return this.readLocked((fd, file) => {
      const found = this.locate(fd, file, state, uid);
      return mboxMessageText(found.src, found.msg, visibleRangesOf(found));
    });
  }

  /** A copy's GUID here is its header MD5, not the one it had. */
  savedGuid(body: Uint8Array): string {
    return md5Hex(savedHeaderMd5(body));
  }

  /** GUID: the header MD5 in hex, as `doveadm fetch guid` shows for mbox; received time: the From_ line's. */
  async messageInfo(state: IndexMapState, uid: number): Promise<StoredMessageInfo> {
    return this.readLocked((fd, file) => {
      const found = this.locate(fd, file, state, uid);
      const { src, msg } = found;
      const visible = visibleRangesOf(found).reduce((n, [a, b]) => n + (b - a), 0);
      return {
        guid: md5Hex((found.headerMd5 ??= mboxHeaderMd5(headerBlock(src, msg)))),
        physicalSize: visible + (msg.endOffset - msg.headerEndOffset),
        receivedTime: msg.receivedTime,
        savedTime: msg.receivedTime,
      };
    });
  }

  /**
   * Logs what changed in the file since the index last saw it, and writes
   * pending flag/keyword changes into the headers. Nothing is read but a
   * stat() when the file matches the `mbox` header and no request is pending.
   * `force` (force-resync): the whole file is read and compared, whatever
   * its size and mtime say; the caller holds the mbox lock (withCommitLocks).
   */
  mailFilePaths(): string[] {
    return [this.mboxPath];
  }

  /** The mbox file's size and mtime differ from what the `mbox` header says the index last synced (a file never synced: when it holds anything). */
  filesChangedSinceSync(state: IndexMapState): boolean {
    const stamp = fileSyncStamp0(this.mboxPath);
    return readMboxSyncHeader(state) === undefined ? stamp.size > 0 : !fileMatchesIndex(state, stamp);
  }

  async syncExternalChanges(state: IndexMapState, opts: ExternalSyncOptions): Promise<FileSyncResult> {
    const stamp = fileSyncStamp0(this.mboxPath);
    const tailLags = getHeader(state).logFileTailOffset < position(state).offset;
    // A dotlock left behind may be a writer killed mid-change: then look, even if size and mtime agree.
    if (!opts.force && fileMatchesIndex(state, stamp) && !tailLags && !fs.existsSync(`${this.mboxPath}.lock`)) return IN_SYNC;
    let hold: WriteHold;
    try {
      // Called under the log lock (Mailbox.refresh): only try, see the module comment.
      hold = await this.retain({ timeoutMs: 0, dotlockTimeoutMs: 0 });
    } catch (err) {
      if (err instanceof LockTimeoutError) return { transactions: [], filesSynced: false };
      throw err;
    }
    let records: LogRecord[];
    try {
      const pending = opts.unsyncedEffects ? pendingChangesOf(state, opts.unsyncedEffects) : pendingChanges(this.indexPrefix, state);
      const inSync = !opts.force && !hold.recovered && fileMatchesIndex(state, fileSyncStamp(hold.fd));
      records = inSync && !pending.any ? [] : ((inSync ? quickSync(hold, state, pending) : undefined) ?? fullSync(hold, state, pending, this.tuning()));
      // A forced sync that found the file as the index has it only restates the `mbox` header: nothing to log (as Dovecot).
      if (opts.force && !tailLags && !pending.any && records.every((r) => r.type === "ext-intro" || r.type === "ext-hdr") && fileMatchesIndex(state, fileSyncStamp(hold.fd))) return IN_SYNC;
    } finally {
      await this.release();
    }
    return { transactions: records.length > 0 ? [records] : [], filesSynced: true };
  }

  /** The `mbox` extension header's mailbox_guid (set by the first sync). */
  mailboxGuid(state: IndexMapState): string | undefined {
    const hdr = readMboxSyncHeader(state);
    return hdr === undefined ? undefined : guid128StringUnlessEmpty(hdr.mailboxGuid);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.hold) {
      this.holdUsers = 0;
      await this.hold.end();
      this.hold = undefined;
    }
    releaseMboxFile(this.file);
  }

  /**
   * The source locate() reads through, kept while the file stands still
   * (same stamp): a run of reads finds the next message in the window the
   * last one left (about seven 2 KB messages per 16 KiB read, instead of a
   * read each), and its cursor goes on from where the last message ended.
   * lastLocated's source is this one.
   */
  private locateSource: { stamp: string; fd: number; cursor: MessageCursor } | undefined;
  /** The window buffer, reused by every locate source (a fresh zeroed one per message cost an import ~1 s). */
  private locateWindow: Uint8Array | undefined;

  /**
   * locateMessage, remembering the last answer: readers ask for a message's
   * bytes and then its identity (or the reverse), and the file cannot have
   * changed while `file.stamp` has not.
   */
  private locate(fd: number, file: FileView, state: IndexMapState, uid: number): LocatedMessage {
    const last = this.lastLocated;
    if (last && last.uid === uid && last.stamp === file.stamp && last.state === state) return last;
    let cached = this.locateSource;
    if (cached === undefined || cached.stamp !== file.stamp || cached.fd !== fd) {
      const window = (this.locateWindow ??= new Uint8Array(LOCATE_WINDOW_BYTES));
      const src = new FileSource(fd, LOCATE_WINDOW_BYTES, window, file.size);
      cached = this.locateSource = { stamp: file.stamp, fd, cursor: new MessageCursor(src, this.mboxPath) };
    }
    const found = locateMessage(fd, this.mboxPath, state, uid, cached.cursor);
    // Every field named, those filled in later too: one object shape for all messages
    // (a spread of `found` and fields added afterwards cost an import of 20,000 messages ~40 ms).
    return (this.lastLocated = { uid, stamp: file.stamp, state, src: found.src, msg: found.msg, headerMd5: found.headerMd5, visible: undefined });
  }

  private tuning(): { windowBytes?: number } {
    return this.windowBytes ? { windowBytes: this.windowBytes } : {};
  }

  /** Takes (or shares) the write hold. */
  private async retain(lock: MboxLockOptions): Promise<WriteHold> {
    this.holdUsers++;
    try {
      if (!this.hold) {
        // A try (under the log lock) must not join a patient acquisition.
        if (lock.timeoutMs === 0 && this.acquiring) throw new LockTimeoutError("the mbox is being locked", { path: this.mboxPath });
        this.acquiring ??= this.file
          .beginWrite({ ...lock, fsync: this.fsync })
          .then((h) => (this.hold = h))
          .finally(() => (this.acquiring = undefined));
        await this.acquiring;
      }
      return this.hold!;
    } catch (err) {
      this.holdUsers--;
      throw err;
    }
  }

  private async release(): Promise<void> {
    if (--this.holdUsers > 0) return;
    const hold = this.hold;
    this.hold = undefined;
    await hold?.end();
  }

  /**
   * Reads under the read lock — or through our own write hold (the writes
   * under it are synchronous, so a reader in this process never runs in the
   * middle of one). Under the read lock the file stands still for the
   * lock's whole run, so its epoch stamps it (no fstat per message); under
   * the write hold our own writes move it, so fstat says.
   */
  private readLocked<T>(fn: (fd: number, file: FileView) => T): Promise<T> {
    if (this.hold) {
      const st = fs.fstatSync(this.hold.fd, { bigint: true });
      return Promise.resolve(fn(this.hold.fd, { stamp: `${st.ino}:${st.size}:${st.mtimeNs}`, size: Number(st.size) }));
    }
    return this.file.read({ timeoutMs: this.lockTimeoutMs }, (fd, held) => fn(fd, { stamp: `read:${held.epoch}`, size: held.size }));
  }

  private fileUidValidity(): number | undefined {
    let fd: number;
    try {
      fd = fs.openSync(this.mboxPath, "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined; // no file yet: nothing to keep
      throw err;
    }
    try {
      const first = scanMbox(new FileSource(fd)).next();
      return first.done ? undefined : first.value.imapBase?.uidValidity;
    } catch (err) {
      // Not an mbox (no valid From_ line first): it has no UIDVALIDITY of its own to keep.
      if (err instanceof MailCorruptedError) return undefined;
      throw err;
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** The open mbox as one read sees it: a stamp equal only for the very same file state, and its size. */
interface FileView {
  readonly stamp: string;
  readonly size: number;
}

/** @throws MailstoreError NOT_FOUND when the mbox file is gone. */
function fileSyncStamp0(p: string): { size: number; mtimeSecs: number } {
  let st;
  try {
    st = fs.statSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new MailstoreError("NOT_FOUND", "mbox file does not exist", { path: p });
    throw err;
  }
  return { size: st.size, mtimeSecs: Math.floor(st.mtimeMs / 1000) };
}

/** The file already matches the index: nothing to log, the tail moves only if it lags. */
const IN_SYNC: FileSyncResult = { transactions: [], filesSynced: true };
