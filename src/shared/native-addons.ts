/**
 * The native addons the engine locks files with, loaded at their first use
 * rather than by every process that imports a module using them: each costs
 * ~2 ms of start-up (dlopen), which a CLI command that takes no lock (a
 * `mailbox status`) would pay for nothing.
 *
 * - os-lock: fcntl(2) record locks (the log's lock, the mbox read/write locks);
 * - fs-ext: flock(2) (dbox m.N files), which os-lock cannot stand in for.
 */
import { createRequire } from "node:module";

type OsLock = typeof import("os-lock");
type FsExt = typeof import("fs-ext");

const load = createRequire(import.meta.url);
let osLock: OsLock | undefined;
let fsExt: FsExt | undefined;

/** os-lock's lock(): fcntl F_SETLK/F_SETLKW on [start, start+length). */
export function fcntlLock(...args: Parameters<OsLock["lock"]>): ReturnType<OsLock["lock"]> {
  osLock ??= load("os-lock") as OsLock;
  return osLock.lock(...args);
}

/** os-lock's unlock(). */
export function fcntlUnlock(...args: Parameters<OsLock["unlock"]>): ReturnType<OsLock["unlock"]> {
  osLock ??= load("os-lock") as OsLock;
  return osLock.unlock(...args);
}

/** fs-ext's flockSync(): flock(2) on `fd` in this process. */
export function flockSync(fd: number, flags: Parameters<FsExt["flockSync"]>[1]): void {
  fsExt ??= load("fs-ext") as FsExt;
  fsExt.flockSync(fd, flags);
}
