/**
 * Dovecot's dotlocks (lib/file-dotlock.c), one implementation for every
 * driver that takes them:
 *
 * - Maildir: `dovecot-uidlist.lock` guards the UID list (and with it the
 *   right to give files UIDs or rename them during a sync);
 *   `dovecot-keywords.lock` is both the lock and the new content of
 *   dovecot-keywords (`replaceTarget`, Dovecot's file_dotlock_replace).
 * - The storage's `subscriptions.lock`, taken the same way.
 * - mbox: `<mbox>.lock`, which Dovecot's writers take after their fcntl lock
 *   (mbox-file.ts) and procmail, mutt and Postfix local take first.
 *
 * Rules shared by all of them:
 * - The lock is the file `<target>.lock`, holding `<pid>:<hostname>`.
 * - A lock is stale when its holder is a dead process of this host (no such
 *   pid; our own pid counts as alive: another async chain of this process
 *   holds it), or when the file's mtime is older than `staleMs` (Dovecot:
 *   120 s for the uidlist and keywords locks, mbox_dotlock_change_timeout
 *   120 s for mbox; the subscriptions lock is overridden after 30 s). A lock
 *   whose content names no local pid (Dovecot's own keywords and
 *   subscriptions locks are empty or hold new content; an unreadable file)
 *   is judged by its age alone, as Dovecot's read_local_pid() does. A stale
 *   lock is deleted and the attempt repeated; `brokeStale` says so.
 * - The holder may touch the file (`touch()`, or every `touchEveryMs`) so
 *   that long work is not taken for a stale lock.
 * - Release deletes the file only if it is still ours (same inode and
 *   content): someone may have overridden a lock we held for too long.
 * - A new lock file never gets more permission bits than Dovecot would give
 *   it: `mode` is limited to the directory's read/write bits plus the
 *   owner's (Dovecot's file_create_mode, `(dir & 0666) | 0600`), and the
 *   umask applies on top.
 *
 * How the file comes into being: the content is written to a hidden
 * temporary file first and link()ed into place (Dovecot's
 * `dotlock_use_excl = no` way; its default O_EXCL way excludes others just
 * the same). So a lock of ours never exists without our pid, and a kill at
 * any moment leaves a lock that Dovecot breaks at once (the pid is gone).
 * A lock naming no pid is judged by Dovecot only by how long *it* has
 * watched the locked file stand still (120 s from its first look,
 * whatever the lock's mtime: checked with doveadm 2.3.19), so an empty lock
 * (a kill between an O_EXCL create and its write) or one holding new
 * content made every doveadm command wait two minutes (seen in the crash
 * campaign on Maildir and mbox). For the same reason replaceTarget() does
 * not write the new content into the lock as Dovecot's
 * file_dotlock_replace() does: it writes a temporary file, renames that
 * over the target while the lock still names us, then removes the lock.
 *
 * fcntl locks would not do: Dovecot does not look at them for these files.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { assert, LockTimeoutError, type ErrorLocation } from "../shared/errors.js";
import { newFilePermissionsIn, finishNewFile, type NewFilePermissions } from "../shared/file-mode.js";

/**
 * Dovecot's MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT (also the keywords file's)
 * and its default mbox_dotlock_change_timeout.
 */
export const DOTLOCK_STALE_MS = 120_000;
/** Dovecot's MAILDIR_LOCK_TOUCH_SECS: how often a Maildir lock holder touches its lock. */
export const MAILDIR_LOCK_TOUCH_MS = 10_000;

export interface DotlockOptions {
  /** How long to wait for another holder (ms; default 10 s; 0 = only try). */
  readonly timeoutMs?: number;
  /** Untouched this long, a lock is abandoned (ms; default DOTLOCK_STALE_MS). */
  readonly staleMs?: number;
  /**
   * File mode of the lock file, limited to what the directory allows
   * (`(dir & 0o666) | 0o600`, Dovecot's file_create_mode; default 0o666:
   * exactly that); the umask applies too.
   */
  readonly mode?: number;
  /** Touch the lock this often while it is held (ms; default: only on `touch()`). */
  readonly touchEveryMs?: number;
  /** The longest pause between two attempts while waiting (ms; default 50). */
  readonly maxPollMs?: number;
}

/** A held dotlock. */
export interface Dotlock {
  /** `<target>.lock`. */
  readonly lockPath: string;
  /**
   * A stale lock (a dead process's, or one untouched too long) was broken to
   * get this one: its holder may have been killed in the middle of changing
   * the file it guarded, so an index may not say what the file holds.
   */
  readonly brokeStale: boolean;
  /**
   * Which lock this one is: its content (`<pid>:<hostname>`) and inode
   * number, `<content>#<ino>` — what a journal written under it names
   * (mbox/redo-journal.ts).
   */
  readonly owner: string;
  /** The `owner` of the stale lock broken to get this one (undefined when none was, or it could not be read). */
  readonly brokenOwner: string | undefined;
  /** Sets the lock file's times to now, if it is still ours, so that long work does not look stale. */
  touch(): void;
  /** Deletes the lock file if it is still ours. Idempotent. */
  release(): void;
  /**
   * Puts `content` in place of the locked file atomically, with the lock
   * file's mode, and releases the lock (what Dovecot's file_dotlock_replace
   * does, through a temporary file: see the module comment). The lock is
   * released on failure too.
   */
  replaceTarget(content: string | Uint8Array, opts?: { fsync?: boolean; mtimeAfterSecs?: number }): void;
}

/**
 * The dotlock was overridden (judged stale and replaced by another process)
 * before the work it guarded was put in place: nothing was written, the
 * change can be retried (a temporary failure, code LOCK_TIMEOUT).
 */
export class DotlockLostError extends LockTimeoutError {
  constructor(message: string, where: ErrorLocation) {
    super(`dotlock lost: ${message}`, where);
  }
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Deletes `p`; a file already gone is fine. */
function unlinkIfExists(p: string): void {
  try {
    fs.unlinkSync(p);
  } catch (err) {
    if (errnoOf(err) !== "ENOENT") throw err;
  }
}

/** Largest pid a lock may name (pid_t); anything else names no pid, as Dovecot's str_to_pid(). */
const MAX_PID = 2 ** 31 - 1;

/**
 * True unless `pid` is certainly gone: Dovecot breaks a lock only when
 * kill(pid, 0) fails with ESRCH (EPERM: alive, but someone else's).
 */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if (errnoOf(err) === "ESRCH") return false;
    if (errnoOf(err) === "EPERM") return true;
    throw err;
  }
}

/** The local pid a lock file's content names, as Dovecot's read_local_pid(); undefined if none. */
function localPidOf(content: string): number | undefined {
  const m = /^(\d+):(.*)$/.exec(content.trim());
  if (!m || m[2] !== os.hostname()) return undefined;
  const pid = Number(m[1]);
  return pid > 0 && pid <= MAX_PID ? pid : undefined;
}

/**
 * What the lock file at `lockPath` is: gone already (try again at once),
 * stale (may be broken), or held.
 */
function judge(lockPath: string, staleMs: number): { state: "gone" | "stale" | "held"; owner?: string; deadPid?: number } {
  let st: fs.Stats;
  try {
    st = fs.statSync(lockPath);
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return { state: "gone" };
    throw err;
  }
  let content: string | undefined;
  try {
    content = fs.readFileSync(lockPath, "utf8");
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return { state: "gone" };
    // Unreadable (another user's lock): no pid to check, only its age (Dovecot's read_local_pid()).
    if (errnoOf(err) !== "EACCES") throw err;
  }
  const pid = content === undefined ? undefined : localPidOf(content);
  const deadPid = pid !== undefined && pid !== process.pid && !processAlive(pid) ? pid : undefined;
  const state = deadPid !== undefined || Date.now() - st.mtimeMs > staleMs ? "stale" : "held";
  return content === undefined ? { state } : { state, owner: `${content}#${st.ino}`, deadPid };
}

/**
 * What a new lock file in `dir` is created with: `mode` within Dovecot's
 * file_create_mode (before the umask), and the directory's group when
 * Dovecot gives it (a lock may become the file it locks: replaceTarget).
 */
function lockFilePermissions(lockPath: string, mode: number): NewFilePermissions {
  const dirPerm = newFilePermissionsIn(path.dirname(lockPath));
  return { ...dirPerm, mode: mode & dirPerm.mode };
}

/** Identity of a lock file we created: an inode number can be reused at once, so the content is compared too. */
interface Created {
  readonly dev: number;
  readonly ino: number;
}

function writeContent(fd: number, content: Buffer): Created {
  fs.writeSync(fd, content);
  const st = fs.fstatSync(fd);
  return { dev: st.dev, ino: st.ino };
}

/** The hidden file a lock is written to before link() puts it in place. */
function lockTemporaryPath(lockPath: string, pid: number): string {
  return path.join(path.dirname(lockPath), `.${path.basename(lockPath)}.${os.hostname()}.${pid}.tmp`);
}

/** The hidden file replaceTarget() writes the new content to. */
function replacementTemporaryPath(target: string, pid: number): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${os.hostname()}.${pid}.new`);
}

/** What a holder killed mid-way leaves besides its lock: no one else writes these names. */
function removeTemporaryFilesOf(deadPid: number, target: string, lockPath: string): void {
  unlinkIfExists(lockTemporaryPath(lockPath, deadPid));
  unlinkIfExists(replacementTemporaryPath(target, deadPid));
}

/**
 * Removes the replacement files of holders killed mid-replace whose lock
 * someone else (Dovecot, which knows nothing of them) has broken since.
 * Called before a replace, which is rare (a new keyword, a subscription).
 */
function sweepDeadReplacements(target: string): void {
  const dir = path.dirname(target);
  const prefix = `.${path.basename(target)}.${os.hostname()}.`;
  for (const name of fs.readdirSync(dir)) {
    if (!name.startsWith(prefix) || !name.endsWith(".new")) continue;
    const pid = Number(name.slice(prefix.length, -".new".length));
    if (Number.isInteger(pid) && pid > 0 && pid <= MAX_PID && pid !== process.pid && !processAlive(pid)) unlinkIfExists(path.join(dir, name));
  }
}

/** link(): @returns the new lock's identity, or undefined when another lock is in place. */
function createByLink(lockPath: string, content: Buffer, perm: NewFilePermissions): Created | undefined {
  const tmpPath = lockTemporaryPath(lockPath, process.pid);
  // A leftover of a killed process that had our pid: start afresh so that its mode is ours.
  unlinkIfExists(tmpPath);
  try {
    const fd = fs.openSync(tmpPath, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, perm.mode);
    let created: Created;
    try {
      finishNewFile(fd, perm, tmpPath);
      created = writeContent(fd, content);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.linkSync(tmpPath, lockPath);
    } catch (err) {
      if (errnoOf(err) === "EEXIST") return undefined;
      throw err;
    }
    return created;
  } finally {
    unlinkIfExists(tmpPath);
  }
}

/**
 * Takes the dotlock of `target` (`<target>.lock`), waiting up to
 * `timeoutMs` for another holder and breaking a stale lock.
 * @throws LockTimeoutError when the lock stays taken; fs errors otherwise.
 */
export async function takeDotlock(target: string, opts: DotlockOptions = {}): Promise<Dotlock> {
  const lockPath = `${target}.lock`;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const staleMs = opts.staleMs ?? DOTLOCK_STALE_MS;
  const maxPollMs = opts.maxPollMs ?? 50;
  const perm = lockFilePermissions(lockPath, opts.mode ?? 0o666);
  const content = Buffer.from(`${process.pid}:${os.hostname()}`, "utf8");
  const deadline = Date.now() + timeoutMs;
  let waitMs = 2;
  let broken: { owner: string | undefined } | undefined;
  for (;;) {
    const created = createByLink(lockPath, content, perm);
    if (created !== undefined) return heldLock(target, lockPath, content, perm, created, broken, opts.touchEveryMs);
    const found = judge(lockPath, staleMs).state;
    if (found === "gone") continue;
    if (found === "stale") {
      // Two processes may both find it stale; unlinking a fresh lock of the
      // other is prevented by judging it again right before (the window is Dovecot's too).
      const again = judge(lockPath, staleMs);
      if (again.state === "stale") {
        try {
          fs.unlinkSync(lockPath);
          broken = { owner: again.owner };
        } catch (err) {
          if (errnoOf(err) !== "ENOENT") throw err; // another breaker was quicker
        }
        if (again.deadPid !== undefined) removeTemporaryFilesOf(again.deadPid, target, lockPath);
      }
      continue;
    }
    if (Date.now() >= deadline) throw new LockTimeoutError(`${lockPath} is held by another process (waited ${timeoutMs} ms)`, { path: lockPath });
    await new Promise((resolve) => setTimeout(resolve, waitMs));
    waitMs = Math.min(waitMs * 2, maxPollMs);
  }
}

function heldLock(target: string, lockPath: string, content: Buffer, perm: NewFilePermissions, created: Created, broken: { owner: string | undefined } | undefined, touchEveryMs: number | undefined): Dotlock {
  let held = true;
  const stillOurs = (): boolean => {
    try {
      const st = fs.statSync(lockPath);
      return st.dev === created.dev && st.ino === created.ino && fs.readFileSync(lockPath).equals(content);
    } catch (err) {
      if (errnoOf(err) === "ENOENT") return false;
      throw err;
    }
  };
  const touch = (): void => {
    if (!held || !stillOurs()) return;
    const now = new Date();
    try {
      fs.utimesSync(lockPath, now, now);
    } catch (err) {
      if (errnoOf(err) !== "ENOENT") throw err; // removed since we looked: release() will notice
    }
  };
  let timer: NodeJS.Timeout | undefined;
  if (touchEveryMs !== undefined) {
    timer = setInterval(() => {
      try {
        touch();
      } catch (err) {
        // Not ours to touch any more (overridden and chowned, a read-only
        // remount): nothing to repair here, release() checks ownership.
        const code = errnoOf(err);
        if (code !== "EACCES" && code !== "EPERM" && code !== "EROFS" && code !== "ESTALE") throw err;
      }
    }, touchEveryMs);
    timer.unref();
  }
  const stop = (): void => {
    held = false;
    if (timer !== undefined) clearInterval(timer);
  };
  const release = (): void => {
    if (!held) return;
    stop();
    if (stillOurs()) unlinkIfExists(lockPath);
  };
  return {
    lockPath,
    brokeStale: broken !== undefined,
    owner: `${content.toString("utf8")}#${created.ino}`,
    brokenOwner: broken?.owner,
    touch,
    release,
    replaceTarget(newContent, o = {}) {
      assert(held, `${lockPath} is not held`);
      const tmpPath = replacementTemporaryPath(target, process.pid);
      let wfd: number | undefined;
      try {
        sweepDeadReplacements(target);
        // A leftover of a killed process that had our pid: start afresh so that its mode is ours.
        unlinkIfExists(tmpPath);
        wfd = fs.openSync(tmpPath, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, perm.mode);
        finishNewFile(wfd, perm, tmpPath);
        fs.writeSync(wfd, typeof newContent === "string" ? Buffer.from(newContent, "utf8") : newContent);
        if (o.fsync) fs.fdatasyncSync(wfd);
        if (o.mtimeAfterSecs !== undefined) {
          // Readers notice a rewrite by the mtime: make sure it moves forward.
          const st = fs.fstatSync(wfd);
          if (Math.floor(st.mtimeMs / 1000) <= o.mtimeAfterSecs) fs.futimesSync(wfd, st.atime, new Date((o.mtimeAfterSecs + 1) * 1000));
        }
        fs.closeSync(wfd);
        wfd = undefined;
        // Overridden as stale meanwhile: another process owns the target now, not ours to replace.
        if (!stillOurs()) throw new DotlockLostError(`${lockPath} was overridden by another process`, { path: lockPath });
        fs.renameSync(tmpPath, target);
      } catch (err) {
        if (wfd !== undefined) fs.closeSync(wfd);
        unlinkIfExists(tmpPath);
        // The lock still names us: removed now rather than standing until it turns stale.
        release();
        throw err;
      }
      release();
    },
  };
}
