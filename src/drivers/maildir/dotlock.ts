/**
 * Dovecot's dotlocks (lib/file-dotlock.c) as the Maildir code takes them:
 * `dovecot-uidlist.lock` guards the UID list (and with it the right to give
 * files UIDs or rename them during a sync), `dovecot-keywords.lock` is both
 * the lock and the new content of dovecot-keywords.
 *
 * - The lock is the file `<target>.lock`, created with O_EXCL (Dovecot's
 *   default `dotlock_use_excl = yes`), holding `<pid>:<hostname>`.
 * - A lock is stale when its holder is a dead process of this host, or when
 *   the file's mtime is older than `staleMs` (Dovecot: 120 s for both
 *   files); a stale lock is deleted and the attempt repeated.
 * - The holder touches the file every 10 s (MAILDIR_LOCK_TOUCH_SECS) so that
 *   a long sync is not taken for a stale lock.
 * - Release deletes the file only if it is still ours (same inode): someone
 *   may have overridden a lock we held for too long.
 *
 * fcntl locks would not do: Dovecot does not look at them for these files.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { LockTimeoutError } from "../../shared/errors.js";

/** Dovecot's MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT (and the keywords file's). */
export const DOTLOCK_STALE_MS = 120_000;
/** Dovecot's MAILDIR_LOCK_TOUCH_SECS. */
const TOUCH_INTERVAL_MS = 10_000;

export interface DotlockOptions {
  /** How long to wait for another holder (default 10 s). */
  readonly timeoutMs?: number;
  /** Untouched this long, a lock is abandoned (default 120 s). */
  readonly staleMs?: number;
  /** File mode of the lock file before the umask (default 0o644). */
  readonly mode?: number;
}

/** A held dotlock. */
export interface Dotlock {
  readonly lockPath: string;
  /** Deletes the lock file if it is still ours. Idempotent. */
  release(): void;
  /**
   * Writes `content` into the lock file and renames it over the locked file
   * (Dovecot's file_dotlock_replace): the new content appears atomically and
   * the lock is gone.
   */
  replaceTarget(content: string | Uint8Array, opts?: { fsync?: boolean; mtimeAfterSecs?: number }): void;
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** True when `pid` is a live process (EPERM: alive, but someone else's). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === "EPERM";
  }
}

/**
 * Whether the lock file at `lockPath` may be broken: its holder (by the
 * `<pid>:<host>` it holds) is a dead process here, or it is older than `staleMs`.
 */
function isStale(lockPath: string, staleMs: number): boolean {
  let st: fs.Stats;
  let content: string;
  try {
    st = fs.statSync(lockPath);
    content = fs.readFileSync(lockPath, "latin1");
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return true; // gone already: just retry
    throw err;
  }
  const m = /^(\d+):(.*)$/.exec(content.trim());
  if (m && m[2] === os.hostname() && Number(m[1]) !== process.pid && !processAlive(Number(m[1]))) return true;
  return Date.now() - st.mtimeMs > staleMs;
}

function tryCreate(lockPath: string, mode: number): number | undefined {
  try {
    return fs.openSync(lockPath, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode);
  } catch (err) {
    if (errnoOf(err) === "EEXIST") return undefined;
    throw err;
  }
}

/**
 * Takes the dotlock of `target` (`<target>.lock`), waiting up to
 * `timeoutMs` for another holder.
 * @throws LockTimeoutError when the lock stays taken; fs errors otherwise.
 */
export async function takeDotlock(target: string, opts: DotlockOptions = {}): Promise<Dotlock> {
  const lockPath = `${target}.lock`;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const staleMs = opts.staleMs ?? DOTLOCK_STALE_MS;
  const deadline = Date.now() + timeoutMs;
  let waitMs = 2;
  for (;;) {
    const fd = tryCreate(lockPath, opts.mode ?? 0o644);
    if (fd !== undefined) return heldLock(lockPath, fd, target);
    if (isStale(lockPath, staleMs)) {
      // Two processes may both find it stale; unlinking a fresh lock of the
      // other is prevented by re-checking it right before (the window is Dovecot's too).
      if (isStale(lockPath, staleMs)) fs.rmSync(lockPath, { force: true });
      continue;
    }
    if (Date.now() >= deadline) throw new LockTimeoutError(`${lockPath} is held by another process`, { path: lockPath });
    await new Promise((resolve) => setTimeout(resolve, waitMs));
    waitMs = Math.min(waitMs * 2, 50);
  }
}

function heldLock(lockPath: string, fd: number, target: string): Dotlock {
  let ino: number;
  const content = `${process.pid}:${os.hostname()}`;
  try {
    fs.writeSync(fd, content);
    ino = fs.fstatSync(fd).ino;
  } finally {
    fs.closeSync(fd);
  }
  let held = true;
  const touch = setInterval(() => {
    const now = new Date();
    try {
      fs.utimesSync(lockPath, now, now);
    } catch {
      // Lost or overridden: release() will notice; nothing to repair here.
    }
  }, TOUCH_INTERVAL_MS);
  touch.unref();
  // An inode number can be reused at once, so the content is compared too.
  const stillOurs = () => {
    try {
      return fs.statSync(lockPath).ino === ino && fs.readFileSync(lockPath, "latin1") === content;
    } catch {
      return false;
    }
  };
  return {
    lockPath,
    release() {
      if (!held) return;
      held = false;
      clearInterval(touch);
      if (stillOurs()) fs.rmSync(lockPath, { force: true });
    },
    replaceTarget(content, o = {}) {
      if (!held) throw new Error(`mailstore internal error: ${lockPath} is not held`);
      held = false;
      clearInterval(touch);
      const wfd = fs.openSync(lockPath, fs.constants.O_WRONLY | fs.constants.O_TRUNC);
      try {
        fs.writeSync(wfd, typeof content === "string" ? Buffer.from(content, "utf8") : content);
        if (o.fsync) fs.fdatasyncSync(wfd);
        if (o.mtimeAfterSecs !== undefined) {
          // Readers notice a rewrite by the mtime: make sure it moves forward.
          const st = fs.fstatSync(wfd);
          if (Math.floor(st.mtimeMs / 1000) <= o.mtimeAfterSecs) fs.futimesSync(wfd, st.atime, new Date((o.mtimeAfterSecs + 1) * 1000));
        }
      } finally {
        fs.closeSync(wfd);
      }
      fs.renameSync(lockPath, target);
    },
  };
}
