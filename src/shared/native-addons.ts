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

type FsExt = typeof import("fs-ext");

/**
 * os-lock's compiled addon, required by its own path: os-lock's index.js only
 * wraps these two functions in util.promisify, and resolving and compiling it
 * (a second resolution for the addon, with extension probing) was half of the
 * ~1.7 ms the first lock of a command paid to load it. Each function takes a
 * Node callback (err with `code`, e.g. EAGAIN) after its arguments.
 */
interface OsLockAddon {
  lock(fd: number, start: number, length: number, exclusive: boolean, immediate: boolean, done: (err: Error | null) => void): void;
  unlock(fd: number, start: number, length: number, done: (err: Error | null) => void): void;
}

const load = createRequire(import.meta.url);
let osLock: OsLockAddon | undefined;
let fsExt: FsExt | undefined;

function osLockAddon(): OsLockAddon {
  osLock ??= load("os-lock/build/Release/addon.node") as OsLockAddon;
  return osLock;
}

function settle(resolve: () => void, reject: (err: Error) => void): (err: Error | null) => void {
  return (err) => (err === null ? resolve() : reject(err));
}

/** fcntl F_SETLK (immediate) or F_SETLKW on [start, start+length); length 0: to the end of the file. */
export function fcntlLock(fd: number, start: number, length: number, mode: { exclusive: boolean; immediate: boolean }): Promise<void> {
  const addon = osLockAddon();
  return new Promise((resolve, reject) => addon.lock(fd, start, length, mode.exclusive, mode.immediate, settle(resolve, reject)));
}

/** fcntl F_UNLCK on [start, start+length). */
export function fcntlUnlock(fd: number, start: number, length: number): Promise<void> {
  const addon = osLockAddon();
  return new Promise((resolve, reject) => addon.unlock(fd, start, length, settle(resolve, reject)));
}

/** fs-ext's flockSync(): flock(2) on `fd` in this process. */
export function flockSync(fd: number, flags: Parameters<FsExt["flockSync"]>[1]): void {
  fsExt ??= load("fs-ext") as FsExt;
  fsExt.flockSync(fd, flags);
}
