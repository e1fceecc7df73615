/**
 * flock(2) locks on dbox files. Dovecot takes `flock(fd, LOCK_EX|LOCK_NB)`
 * on an m.N file before appending to or purging it (dbox.md §2.5), and skips
 * files it cannot lock. flock locks are separate from fcntl locks, so the
 * fcntl binding (os-lock) cannot stand in, and Node has no flock().
 *
 * We borrow util-linux's flock(1): the child gets our descriptor as its fd 3
 * and locks it. An flock lock belongs to the open file description, which
 * the child shares with us, so the lock outlives the child and lasts until we
 * unlock or close our last descriptor of that description. One process spawn
 * per lock: fine for appends, which also fsync.
 */
import { spawn } from "node:child_process";
import { MailstoreError } from "../../shared/errors.js";

/** flock(1)'s exit code for "already locked", chosen with -E. */
const CONFLICT_EXIT = 75;

function runFlock(fd: number, args: string[], path: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn("flock", [...args, "3"], { stdio: ["ignore", "ignore", "pipe", fd] });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", (err) => reject(new MailstoreError("UNSUPPORTED", `cannot run flock(1): ${err.message}`, { path })));
    child.on("close", (code) => {
      if (code === 0 || code === CONFLICT_EXIT) resolve(code);
      else reject(new MailstoreError("UNSUPPORTED", `flock(1) failed (exit ${code}): ${stderr.trim()}`, { path }));
    });
  });
}

/**
 * Tries to take an exclusive flock on `fd` without waiting.
 * @returns true when locked (released by unlockFlock() or by closing `fd`),
 *   false when another process holds a lock on the file.
 * @throws MailstoreError (UNSUPPORTED) when flock(1) cannot be run.
 */
export async function tryFlockExclusive(fd: number, path?: string): Promise<boolean> {
  return (await runFlock(fd, ["-x", "-n", "-E", String(CONFLICT_EXIT)], path)) === 0;
}

/** Releases a lock taken with tryFlockExclusive(). */
export async function unlockFlock(fd: number, path?: string): Promise<void> {
  await runFlock(fd, ["-u"], path);
}
