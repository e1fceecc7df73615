import { lock as fcntlLock, unlock as fcntlUnlock } from "os-lock";
import { LockTimeoutError } from "../errors.js";

/**
 * Exclusive POSIX record lock (F_SETLK, F_WRLCK, whole file) on an open log
 * file: the lock Dovecot takes with its default lock_method=fcntl, so that
 * Dovecot and the engine never append at the same time.
 *
 * fcntl locks belong to the process: a second lock in the same process always
 * succeeds, and closing ANY descriptor of the file drops the lock. Callers
 * therefore go through SharedLogFile (one descriptor per file and process) and
 * serialise in-process writers with its mutex.
 */
export async function lockExclusive(fd: number, path: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let waitMs = 1;
  for (;;) {
    try {
      await fcntlLock(fd, 0, 0, { exclusive: true, immediate: true });
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "EACCES" && code !== "EAGAIN" && code !== "EBUSY") throw err;
    }
    if (Date.now() >= deadline) {
      throw new LockTimeoutError(`could not lock the log within ${timeoutMs} ms`, { path });
    }
    await new Promise((resolve) => setTimeout(resolve, waitMs));
    waitMs = Math.min(waitMs * 2, 50);
  }
}

export async function unlockFile(fd: number): Promise<void> {
  await fcntlUnlock(fd, 0, 0);
}
