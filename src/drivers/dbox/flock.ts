/**
 * flock(2) locks on dbox files. Dovecot takes `flock(fd, LOCK_EX|LOCK_NB)`
 * on an m.N file before appending to or purging it (dbox.md §2.5), and skips
 * files it cannot lock. flock locks are separate from fcntl locks, so the
 * fcntl binding (os-lock) cannot stand in, and Node has no flock().
 *
 * fs-ext's flockSync calls flock(2) on our descriptor in this process. It
 * replaced spawning util-linux flock(1) per lock, which cost a process per
 * m.N file touched (~0.56 s of a 20k-message mdbox import). The sync call is
 * right here: with LOCK_NB the kernel answers at once, and the async variant
 * would only add a trip through libuv's thread pool.
 *
 * An flock lock belongs to the open file description: it lasts until
 * unlockFlock() or until the last descriptor of that description is closed.
 */
import * as fs from "node:fs";
import { MailstoreError } from "../../shared/errors.js";
import { flockSync } from "../../shared/native-addons.js";

/** errno codes flock(2) gives for "another description holds a conflicting lock" (LOCK_NB). */
const CONFLICT_CODES = new Set(["EWOULDBLOCK", "EAGAIN"]);

function flockError(err: unknown, what: string, path: string | undefined): MailstoreError {
  const code = (err as NodeJS.ErrnoException).code ?? "unknown error";
  return new MailstoreError("UNSUPPORTED", `flock(2) ${what} failed: ${code}`, { path });
}

/**
 * Tries to take an exclusive flock on `fd` without waiting.
 * @returns true when locked (released by unlockFlock() or by closing `fd`),
 *   false when another process (or another open of the file) holds a lock on it.
 * @throws MailstoreError (UNSUPPORTED) when flock(2) fails otherwise (e.g. EBADF, ENOLCK).
 */
export function tryFlockExclusive(fd: number, path?: string): boolean {
  try {
    flockSync(fd, "exnb");
    return true;
  } catch (err) {
    if (err instanceof Error && CONFLICT_CODES.has((err as NodeJS.ErrnoException).code ?? "")) return false;
    throw flockError(err, "LOCK_EX|LOCK_NB", path);
  }
}

/**
 * Takes the flock on `fd`, open at `path`, and checks that `path` still
 * names that file: whoever held the lock before us (a purge) may have
 * unlinked or replaced it between our open and our lock, and what we then
 * wrote or read would be a file nobody sees.
 * @returns the file's size under the lock (held from here on; released by
 *   closing `fd`), "locked" when someone else holds it, "gone" when `path`
 *   no longer names the file.
 */
export function flockStillAt(fd: number, path: string): { readonly sizeBytes: number } | "locked" | "gone" {
  if (!tryFlockExclusive(fd, path)) return "locked";
  // As bigints: an inode number past 2^53 (some NFS servers) would compare equal to its neighbours as a double.
  const st = fs.fstatSync(fd, { bigint: true });
  const now = fs.statSync(path, { bigint: true, throwIfNoEntry: false });
  if (now === undefined || now.ino !== st.ino || now.dev !== st.dev) return "gone";
  return { sizeBytes: Number(st.size) };
}

/** Releases a lock taken with tryFlockExclusive(). @throws MailstoreError (UNSUPPORTED) when flock(2) fails. */
export async function unlockFlock(fd: number, path?: string): Promise<void> {
  try {
    flockSync(fd, "un");
  } catch (err) {
    throw flockError(err, "LOCK_UN", path);
  }
}
