/**
 * Dotlocks as Dovecot's mbox writers take them (maildir-mbox.md B5;
 * lib/file-dotlock.c): `<mbox>.lock`, linked into place, holding
 * `<pid>:<hostname>`. A lock is stale when its process is gone (same host,
 * no such pid: observed, doveadm breaks such a lock within ~3 s) or when it
 * has not been touched for `mbox_dotlock_change_timeout` (120 s) — which is
 * why a long rewrite touches its lock. Dovecot takes it after its fcntl lock
 * (mbox-file.ts); procmail, mutt and Postfix local take it first.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LockTimeoutError } from "../../shared/errors.js";

/** Dovecot's default mbox_dotlock_change_timeout. */
export const DOTLOCK_STALE_MS = 120_000;

export interface DotlockOptions {
  timeoutMs: number;
  staleMs?: number;
}

/** A held dotlock. */
export interface Dotlock {
  readonly path: string;
  /**
   * A dead process's lock was broken to get this one: that process may have
   * been killed in the middle of changing the mbox, so its index may not say
   * what the file holds — the next sync must read the file.
   */
  readonly brokeStale: boolean;
  /** Keeps the lock from looking stale during long work. */
  touch(): void;
  /** Removes the lock file, if it is still ours. */
  release(): void;
}

function lockContent(): string {
  return `${process.pid}:${os.hostname()}`;
}

/** @returns true when the lock file at `lockPath` belongs to nobody alive, or is too old. */
function isStale(lockPath: string, staleMs: number): boolean {
  let content: string;
  let st: fs.Stats;
  try {
    st = fs.statSync(lockPath);
    content = fs.readFileSync(lockPath, "utf8");
  } catch {
    return false; // gone (or unreadable): just try again
  }
  const m = /^(\d+):(.*)$/.exec(content.trim());
  if (m && m[2] === os.hostname()) {
    const pid = Number(m[1]);
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ESRCH") return true;
    }
  }
  return Date.now() - st.mtimeMs > staleMs;
}

/**
 * Writes the lock's content to a hidden temporary file and links it into
 * place, so that `<mbox>.lock` never exists without its owner's pid: a kill
 * between creating and writing an O_EXCL lock would leave an empty lock that
 * every reader must wait two minutes to break.
 * @returns the lock's inode, or undefined when another lock is in place.
 */
function tryCreate(lockPath: string): number | undefined {
  const tmpPath = path.join(path.dirname(lockPath), `.${path.basename(lockPath)}.${os.hostname()}.${process.pid}.tmp`);
  fs.writeFileSync(tmpPath, lockContent(), { mode: 0o600 });
  try {
    fs.linkSync(tmpPath, lockPath);
    return fs.statSync(lockPath).ino;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return undefined;
  } finally {
    fs.rmSync(tmpPath, { force: true });
  }
}

/**
 * Creates `<mboxPath>.lock`, waiting while another live process holds it.
 * @throws LockTimeoutError after `timeoutMs`.
 */
export async function acquireDotlock(mboxPath: string, opts: DotlockOptions): Promise<Dotlock> {
  const lockPath = `${mboxPath}.lock`;
  const staleMs = opts.staleMs ?? DOTLOCK_STALE_MS;
  const deadline = Date.now() + opts.timeoutMs;
  let waitMs = 2;
  let brokeStale = false;
  for (;;) {
    const taken = tryCreate(lockPath);
    if (taken !== undefined) return heldDotlock(lockPath, taken, brokeStale);
    if (isStale(lockPath, staleMs)) {
      // Another breaker may have replaced it already; removing a fresh lock
      // here would be wrong, so only remove what we judged stale.
      try {
        fs.unlinkSync(lockPath);
        brokeStale = true;
      } catch {
        /* someone else removed it */
      }
      continue;
    }
    if (Date.now() >= deadline) throw new LockTimeoutError(`mbox is dotlocked by another process (${opts.timeoutMs} ms)`, { path: lockPath });
    await new Promise((r) => setTimeout(r, waitMs));
    waitMs = Math.min(waitMs * 2, 100);
  }
}

function heldDotlock(lockPath: string, ino: number, brokeStale: boolean): Dotlock {
  let released = false;
  const ours = () => {
    try {
      return fs.statSync(lockPath).ino === ino;
    } catch {
      return false;
    }
  };
  return {
    path: lockPath,
    brokeStale,
    touch() {
      if (released || !ours()) return;
      const now = new Date();
      fs.utimesSync(lockPath, now, now);
    },
    release() {
      if (released) return;
      released = true;
      if (ours()) fs.rmSync(lockPath, { force: true });
    },
  };
}
