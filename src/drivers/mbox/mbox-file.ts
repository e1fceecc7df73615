/**
 * One mbox file as this process shares it: one descriptor, Dovecot's locks,
 * and the in-process ordering of readers and writers.
 *
 * Locks, as doveadm 2.3.19 actually runs (`doveconf -a`: `mbox_write_locks =
 * fcntl dotlock`, `mbox_read_locks = fcntl` — the fcntl lock FIRST, although
 * the documentation and our format sheet say "dotlock fcntl"): writers take
 * an fcntl write lock, then the dotlock; readers an fcntl read lock. The
 * order matters: taking the dotlock first deadlocks with a Dovecot save,
 * which holds the fcntl lock while it waits for the dotlock (observed).
 *
 * fcntl locks belong to the process and are dropped when ANY descriptor of
 * the file closes, and a read lock taken while holding the write lock would
 * downgrade it — so every user in this process goes through the one
 * MboxFile per path, which orders its own readers and writers first (a
 * reader-writer queue) and keeps the fcntl state equal to the strongest
 * holder.
 *
 * The engine never replaces the file (in-place.ts says why), but another
 * program might: after getting its locks, a user checks that the path still
 * names the inode it locked, and starts over on the new one otherwise.
 */
import * as fs from "node:fs";
import { fcntlLock, fcntlUnlock } from "../../shared/native-addons.js";
import { LockTimeoutError, MailstoreError } from "../../shared/errors.js";
import { takeDotlock, type Dotlock } from "../dotlock.js";
import { RedoJournal, recoverRedoJournal } from "./redo-journal.js";
import { cleanupAfter } from "../../shared/cleanup.js";

export interface MboxLockOptions {
  /** How long to wait for another process's fcntl lock (ms); 0 = only try. */
  timeoutMs: number;
  /** How long to wait for another process's dotlock (ms; default timeoutMs). */
  dotlockTimeoutMs?: number;
  /** fdatasync what is written under the hold (Dovecot's mail_fsync ≠ never; default true). */
  fsync?: boolean;
}

/** An exclusive hold on the mbox (fcntl write lock + dotlock). */
export interface WriteHold {
  readonly file: MboxFile;
  /** Descriptor of the file. */
  readonly fd: number;
  /** A dead writer's dotlock was broken: the file may not be what the index says (Dotlock.brokeStale). */
  readonly recovered: boolean;
  /**
   * Writes `data` (a list: its parts one after another) at `at`, then cuts
   * the file at `truncateTo` if given, as one step a kill cannot leave half
   * done (redo-journal.ts). `keepRecord`: the next change is another such
   * write or settle() (RedoJournal.write).
   */
  write(data: Uint8Array | readonly Uint8Array[], at: number, truncateTo?: number, keepRecord?: boolean): void;
  /** Voids the redo record a keepRecord write left. */
  settle(): void;
  /** Keeps the dotlock fresh during long work. */
  touch(): void;
  /** Makes what was written durable, unless the storage runs with fsync "never". */
  syncData(): void;
  end(): Promise<void>;
}

const files = new Map<string, { file: MboxFile; refs: number }>();

/**
 * @param journalPath where writers keep their redo journal (redo-journal.ts):
 *   in the mailbox's index directory. The first user's choice holds.
 * @returns this process's MboxFile for `path` (release it when done).
 */
export function openMboxFile(path: string, journalPath: string): MboxFile {
  const entry = files.get(path);
  if (entry) {
    entry.refs++;
    return entry.file;
  }
  const file = new MboxFile(path, journalPath);
  files.set(path, { file, refs: 1 });
  return file;
}

/** Ends one user of `file`; the last one closes the descriptor. */
export function releaseMboxFile(file: MboxFile): void {
  const entry = files.get(file.path);
  if (!entry || entry.file !== file) return;
  if (--entry.refs > 0) return;
  files.delete(file.path);
  file.closeNow();
}

async function fcntlRetry(fd: number, exclusive: boolean, path: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let waitMs = 1;
  for (;;) {
    try {
      await fcntlLock(fd, 0, 0, { exclusive, immediate: true });
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "EACCES" && code !== "EAGAIN" && code !== "EBUSY") throw err;
    }
    if (Date.now() >= deadline) throw new LockTimeoutError(`could not ${exclusive ? "write" : "read"}-lock the mbox within ${timeoutMs} ms`, { path });
    await new Promise((r) => setTimeout(r, waitMs));
    waitMs = Math.min(waitMs * 2, 50);
  }
}

/** What a reader under the read lock knows without asking the kernel again. */
export interface ReadLockView {
  /** Same value for the whole of one uninterrupted read lock. */
  readonly epoch: number;
  /** The file's size when the lock was taken (it cannot change under the lock). */
  readonly size: number;
}

/** See the module comment. */
export class MboxFile {
  private fdValue = -1;
  private ino = -1;
  private readers = 0;
  private writer = false;
  private readonly waiting: Array<{ write: boolean; go: () => void }> = [];
  /**
   * The fcntl read lock outlives its last reader until the event loop turns
   * (setImmediate), so that a run of reads (a conversion reading thousands
   * of messages) takes it once, not once per message. Other processes wait
   * no longer than for one of Dovecot's own read sessions.
   */
  private readLockHeld = false;
  /** Counts read-lock acquisitions: the file cannot change while one lasts. */
  private readLockEpoch = 0;
  private readLockSize = 0;
  private readLocking: Promise<void> | undefined;
  private lingering: NodeJS.Immediate | undefined;
  /**
   * The read lock's unlock while it is in libuv's pool (fcntl runs there):
   * a new lock waits for it, as the pool may run the two in either order and
   * the unlock would then drop the new lock; and the descriptor is not closed
   * under it, as a descriptor number closed and reused by another open (the
   * log's, holding its lock) would get the unlock.
   */
  private dropping: Promise<void> | undefined;
  /** Why a lingering read lock's unlock failed: reported to the next user. */
  private dropFailure: unknown;

  constructor(
    readonly path: string,
    readonly journalPath: string,
  ) {}

  /** The open descriptor; only meaningful while holding a lock. */
  get fd(): number {
    return this.fdValue;
  }

  /**
   * Runs `fn` under a read lock (shared with this process's other readers).
   * `fn` gets the file's size and an epoch that stays the same for as long
   * as this lock is held without a break (no writer can change the file in
   * between), so a reader may cache what it located by it.
   */
  async read<T>(opts: MboxLockOptions, fn: (fd: number, held: ReadLockView) => Promise<T> | T): Promise<T> {
    await this.enter(false);
    try {
      if (!this.readLockHeld) {
        // Concurrent readers share one acquisition.
        this.readLocking ??= this.takeReadLock(opts).finally(() => (this.readLocking = undefined));
        await this.readLocking;
      }
    } catch (err) {
      this.leave(false);
      throw err;
    }
    try {
      return await fn(this.fdValue, { epoch: this.readLockEpoch, size: this.readLockSize });
    } finally {
      this.leave(false);
      if (this.readers === 0 && !this.writer && this.lingering === undefined) {
        this.lingering = setImmediate(() => {
          this.lingering = undefined;
          if (this.readers === 0 && !this.writer) this.startDroppingReadLock();
        });
      }
    }
  }

  private async takeReadLock(opts: MboxLockOptions): Promise<void> {
    if (this.readLockHeld) return;
    await this.droppedReadLock();
    for (;;) {
      this.openLatest();
      await fcntlRetry(this.fdValue, false, this.path, opts.timeoutMs);
      if (this.isLatest()) break;
      await fcntlUnlock(this.fdValue, 0, 0);
    }
    this.readLockSize = fs.fstatSync(this.fdValue).size;
    this.readLockEpoch++;
    this.readLockHeld = true;
  }

  /** Starts unlocking the read lock (see `dropping`); droppedReadLock() waits for it. */
  private startDroppingReadLock(): void {
    if (!this.readLockHeld) return;
    this.readLockHeld = false;
    if (this.fdValue < 0) return;
    this.dropping = fcntlUnlock(this.fdValue, 0, 0).then(
      () => {
        this.dropping = undefined;
      },
      (err: unknown) => {
        this.dropping = undefined;
        this.dropFailure = err;
      },
    );
  }

  /** The read lock dropped, its unlock done; throws what a lingering lock's unlock failed with. */
  private async droppedReadLock(): Promise<void> {
    this.startDroppingReadLock();
    if (this.dropping !== undefined) await this.dropping;
    const failure = this.dropFailure;
    this.dropFailure = undefined;
    if (failure !== undefined) throw failure;
  }

  /**
   * Takes the exclusive hold: this process's turn, then the fcntl write
   * lock, then the dotlock — on the inode the path still names. With
   * `timeoutMs` 0 nothing is waited for, not even this process's other users.
   */
  async beginWrite(opts: MboxLockOptions): Promise<WriteHold> {
    if (opts.timeoutMs === 0 && !this.isFree(true)) throw new LockTimeoutError("the mbox is in use in this process", { path: this.path });
    await this.enter(true);
    if (this.lingering) clearImmediate(this.lingering);
    this.lingering = undefined;
    try {
      await this.droppedReadLock();
    } catch (err) {
      this.leave(true);
      throw err;
    }
    let dotlock: Dotlock | undefined;
    try {
      for (;;) {
        this.openLatest();
        await fcntlRetry(this.fdValue, true, this.path, opts.timeoutMs);
        // Linked into place (never empty, see dotlock.ts), 0600, polled up to every 100 ms.
        dotlock = await takeDotlock(this.path, { timeoutMs: opts.dotlockTimeoutMs ?? opts.timeoutMs, mode: 0o600, maxPollMs: 100 });
        if (this.isLatest()) break;
        // Replaced while we waited: lock the new file instead.
        dotlock.release();
        dotlock = undefined;
        await fcntlUnlock(this.fdValue, 0, 0);
      }
    } catch (err) {
      if (this.fdValue >= 0) await cleanupAfter(err, () => fcntlUnlock(this.fdValue, 0, 0));
      this.leave(true);
      throw err;
    }
    let ended = false;
    const held = dotlock;
    const fd = this.fdValue;
    const fsync = opts.fsync !== false;
    let journal: RedoJournal;
    try {
      // A writer killed mid-write: finish its write, if nobody else has written since.
      recoverRedoJournal(this.journalPath, fd, held.brokenOwner, fsync);
      journal = new RedoJournal(this.journalPath, held.owner, fsync);
    } catch (err) {
      await cleanupAfter(err, () => held.release());
      await cleanupAfter(err, () => fcntlUnlock(fd, 0, 0));
      this.leave(true);
      throw err;
    }
    return {
      file: this,
      get fd() {
        return ended ? -1 : fd;
      },
      recovered: held.brokeStale,
      write: (data, at, truncateTo, keepRecord) => journal.write(fd, data, at, truncateTo, keepRecord),
      settle: () => journal.settle(),
      touch: () => held.touch(),
      syncData: () => {
        if (fsync) fs.fdatasyncSync(fd);
      },
      end: async () => {
        if (ended) return;
        ended = true;
        try {
          // The last journaled write is done: its record goes before the dotlock does.
          journal.close();
          held.release();
          await fcntlUnlock(this.fdValue, 0, 0);
        } finally {
          // This process's next user gets its turn even if the unlock failed (the error still reaches the caller).
          this.leave(true);
        }
      },
    };
  }

  /** Closes the descriptor (no lock may be held), once an unlock in flight on it is done (see `dropping`). */
  closeNow(): void {
    if (this.lingering) clearImmediate(this.lingering);
    this.lingering = undefined;
    this.readLockHeld = false;
    const fd = this.fdValue;
    this.fdValue = -1;
    this.ino = -1;
    if (fd < 0) return;
    if (this.dropping === undefined) fs.closeSync(fd);
    else void this.dropping.then(() => fs.closeSync(fd));
  }

  /** @returns true when the path names the inode we have open. */
  private isLatest(): boolean {
    try {
      return fs.statSync(this.path).ino === this.ino;
    } catch (err) {
      // Renamed or unlinked away: what we have open is not the file any more (openLatest says NOT_FOUND).
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw err;
    }
  }

  /** Reopens when the path now names another inode (or nothing was open). */
  private openLatest(): void {
    let st: fs.Stats;
    try {
      st = fs.statSync(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new MailstoreError("NOT_FOUND", "mbox file does not exist", { path: this.path });
      throw err;
    }
    if (this.fdValue >= 0 && st.ino === this.ino) return;
    this.closeNow();
    try {
      this.fdValue = fs.openSync(this.path, "r+");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EACCES") throw err;
      this.fdValue = fs.openSync(this.path, "r");
    }
    this.ino = fs.fstatSync(this.fdValue).ino;
  }

  private isFree(write: boolean): boolean {
    return write ? !this.writer && this.readers === 0 && this.waiting.length === 0 : !this.writer && !this.waiting.some((w) => w.write);
  }

  /** Waits for this process's turn: readers share, a writer is alone; writers are not starved. */
  private enter(write: boolean): Promise<void> {
    if (this.isFree(write)) {
      this.take(write);
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push({ write, go: resolve }));
  }

  private take(write: boolean): void {
    if (write) this.writer = true;
    else this.readers++;
  }

  private leave(write: boolean): void {
    if (write) this.writer = false;
    else this.readers--;
    while (this.waiting.length > 0 && !this.writer) {
      const next = this.waiting[0];
      if (next.write && this.readers > 0) break;
      this.waiting.shift();
      this.take(next.write);
      next.go();
      if (next.write) break;
    }
  }
}
