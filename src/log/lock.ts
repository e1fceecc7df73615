import { channel } from "node:diagnostics_channel";
import { LockTimeoutError, type ErrorLocation } from "../shared/errors.js";
import { fcntlLock, fcntlUnlock } from "../shared/native-addons.js";

/**
 * Exclusive POSIX record lock (F_SETLK, F_WRLCK, whole file) on an open log
 * file: the lock Dovecot takes with its default lock_method=fcntl, so that
 * Dovecot and the engine never append at the same time.
 *
 * fcntl locks belong to the process: a second lock in the same process always
 * succeeds, and closing ANY descriptor of the file drops the lock. Callers
 * therefore go through SharedLogFile (one descriptor per file and process) and
 * serialise in-process writers with its mutex.
 *
 * Each lock taken is published on the diagnostics channel LOCK_WAIT_CHANNEL
 * as {path, waitMs} (nothing is computed when no one subscribes): the
 * concurrency campaign reports lock-wait percentiles from it.
 */
export async function lockExclusive(fd: number, path: string, timeoutMs: number): Promise<void> {
  // process.hrtime, not performance.now(): the global `performance` loads perf_hooks and a
  // dozen modules (~1.5 ms) in a command that would otherwise never need them.
  const start = process.hrtime.bigint();
  const deadline = Date.now() + timeoutMs;
  let waitMs = 1;
  for (;;) {
    if (await tryLockExclusive(fd)) {
      if (lockWait.hasSubscribers) lockWait.publish({ path, waitMs: Number(process.hrtime.bigint() - start) / 1e6 });
      return;
    }
    if (Date.now() >= deadline) {
      throw new LockTimeoutError(`could not lock the log within ${timeoutMs} ms`, { path });
    }
    await new Promise((resolve) => setTimeout(resolve, waitMs));
    waitMs = Math.min(waitMs * 2, 50);
  }
}

/** Name of the diagnostics channel lockExclusive publishes each lock's wait on ({path, waitMs}). */
export const LOCK_WAIT_CHANNEL = "mailstore:log-lock-wait";
const lockWait = channel(LOCK_WAIT_CHANNEL);

/**
 * One F_SETLK attempt. @returns false when another process holds a
 * conflicting lock. When this process already holds the lock it succeeds (a
 * no-op), so a false answer while we believe we hold it proves that the lock
 * was lost (some descriptor of the file was closed in this process).
 */
export async function tryLockExclusive(fd: number): Promise<boolean> {
  try {
    await fcntlLock(fd, 0, 0, { exclusive: true, immediate: true });
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EACCES" || code === "EAGAIN" || code === "EBUSY") return false;
    throw err;
  }
}

export async function unlockFile(fd: number): Promise<void> {
  await fcntlUnlock(fd, 0, 0);
}

/**
 * The log lock this process took is gone: another process holds it now, or
 * appended while we thought we held it (POSIX locks are dropped when the
 * process closes any descriptor of the file). Nothing was written; the
 * commit can be retried (code LOCK_TIMEOUT: a temporary failure, as doveadm's
 * exit code 75).
 */
export class LogLockLostError extends LockTimeoutError {
  constructor(message: string, where: ErrorLocation) {
    super(`log lock lost: ${message}`, where);
  }
}
