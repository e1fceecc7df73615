/**
 * One mbox file as this process shares it: one descriptor, Dovecot's locks,
 * and the in-process ordering of readers and writers.
 *
 * Locks, as Dovecot's defaults (maildir-mbox.md B5): writers take the
 * dotlock, then an fcntl write lock (`mbox_write_locks = dotlock fcntl`);
 * readers an fcntl read lock (`mbox_read_locks = fcntl`). fcntl locks belong
 * to the process and are dropped when ANY descriptor of the file closes, and
 * a read lock taken while holding the write lock would downgrade it — so
 * every user in this process goes through the one MboxFile per path, which
 * orders its own readers and writers first (a reader-writer queue) and keeps
 * the fcntl state equal to the strongest holder.
 *
 * Before locking, the path is checked for a new inode (another process
 * replaced the file, rewrite.ts) and reopened, as Dovecot's
 * mbox_file_open_latest does.
 */
import * as fs from "node:fs";
import { lock as fcntlLock, unlock as fcntlUnlock } from "os-lock";
import { LockTimeoutError, MailstoreError } from "../../errors.js";
import { acquireDotlock, type Dotlock } from "./dotlock.js";

export interface MboxLockOptions {
  /** How long to wait for another process's lock (ms). */
  timeoutMs: number;
}

/** An exclusive hold on the mbox (dotlock + fcntl write lock). */
export interface WriteHold {
  readonly file: MboxFile;
  /** Descriptor of the current file (changes after `replace`). */
  readonly fd: number;
  /** Keeps the dotlock fresh during long work. */
  touch(): void;
  /**
   * Makes `tempPath` (open as `tempFd`, complete and fsynced) the mbox, keeping the hold.
   * @see MboxFile.replaceLocked
   */
  replace(tempPath: string, tempFd: number): Promise<void>;
  end(): Promise<void>;
}

const files = new Map<string, { file: MboxFile; refs: number }>();

/** @returns this process's MboxFile for `path` (release() it when done). */
export function openMboxFile(path: string): MboxFile {
  const entry = files.get(path);
  if (entry) {
    entry.refs++;
    return entry.file;
  }
  const file = new MboxFile(path);
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

/** See the module comment. */
export class MboxFile {
  private fdValue = -1;
  private ino = -1;
  private readers = 0;
  private writer = false;
  private readonly waiting: Array<{ write: boolean; go: () => void }> = [];

  constructor(readonly path: string) {}

  /** The open descriptor; only meaningful while holding a lock. */
  get fd(): number {
    return this.fdValue;
  }

  /** Runs `fn` under a read lock (shared with this process's other readers). */
  async read<T>(opts: MboxLockOptions, fn: (fd: number) => Promise<T> | T): Promise<T> {
    await this.enter(false);
    try {
      if (this.readers === 1) {
        this.openLatest();
        await fcntlRetry(this.fdValue, false, this.path, opts.timeoutMs);
      }
    } catch (err) {
      this.leave(false);
      throw err;
    }
    try {
      return await fn(this.fdValue);
    } finally {
      if (this.readers === 1) await fcntlUnlock(this.fdValue, 0, 0).catch(() => undefined);
      this.leave(false);
    }
  }

  /** Takes the exclusive hold: this process's turn, then the dotlock, then the fcntl write lock. */
  async beginWrite(opts: MboxLockOptions): Promise<WriteHold> {
    await this.enter(true);
    let dotlock: Dotlock | undefined;
    try {
      dotlock = await acquireDotlock(this.path, { timeoutMs: opts.timeoutMs });
      this.openLatest();
      await fcntlRetry(this.fdValue, true, this.path, opts.timeoutMs);
    } catch (err) {
      dotlock?.release();
      this.leave(true);
      throw err;
    }
    let ended = false;
    const held = dotlock;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the getter must follow replaceLocked
    const self = this;
    return {
      file: this,
      get fd() {
        return ended ? -1 : self.fdValue;
      },
      touch: () => held.touch(),
      replace: (tempPath, tempFd) => this.replaceLocked(tempPath, tempFd),
      end: async () => {
        if (ended) return;
        ended = true;
        await fcntlUnlock(this.fdValue, 0, 0).catch(() => undefined);
        held.release();
        this.leave(true);
      },
    };
  }

  /**
   * Under the write hold: fcntl-locks the complete, fsynced `tempFd`, renames
   * `tempPath` over the mbox (atomic for every reader: old or new file, never
   * a torn one) and syncs the directory. The old inode is then truncated when
   * nothing else links to it, so a process that was waiting on its fcntl lock
   * finds an empty file and resyncs rather than reading a message at an
   * offset that now belongs to another.
   */
  async replaceLocked(tempPath: string, tempFd: number): Promise<void> {
    await fcntlRetry(tempFd, true, tempPath, 1000);
    fs.renameSync(tempPath, this.path);
    syncDir(this.path);
    const old = this.fdValue;
    try {
      if (fs.fstatSync(old).nlink === 0) fs.ftruncateSync(old, 0);
    } finally {
      fs.closeSync(old);
    }
    this.fdValue = tempFd;
    this.ino = fs.fstatSync(tempFd).ino;
  }

  /** Closes the descriptor (no lock may be held). */
  closeNow(): void {
    if (this.fdValue >= 0) fs.closeSync(this.fdValue);
    this.fdValue = -1;
    this.ino = -1;
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

  /** Waits for this process's turn: readers share, a writer is alone; writers are not starved. */
  private enter(write: boolean): Promise<void> {
    const free = write ? !this.writer && this.readers === 0 && this.waiting.length === 0 : !this.writer && !this.waiting.some((w) => w.write);
    if (free) {
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

function syncDir(filePath: string): void {
  const dir = fs.openSync(filePath.slice(0, Math.max(filePath.lastIndexOf("/"), 1)), "r");
  try {
    fs.fsyncSync(dir);
  } finally {
    fs.closeSync(dir);
  }
}
