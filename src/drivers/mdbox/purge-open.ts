/**
 * Opening the m.N files a purge rewrites, each under its flock. The file is
 * then read through a FileWindow, synchronously: a window of it comes from
 * the page cache in tens of µs, less than one trip through libuv's pool,
 * and one reused buffer replaces reading each whole file into a buffer of
 * its size (two of 10 MiB, touched for the first time, were most of a 20k
 * purge's time on these VMs).
 */
import * as fs from "node:fs";
import { flockStillAt } from "../dbox/flock.js";
import type { MdboxPaths } from "./paths.js";

/** An m.N open read-only under its flock. */
export interface OpenedFile {
  readonly fileId: number;
  readonly path: string;
  readonly alt: boolean;
  /** Holds the flock until closed. */
  readonly fd: number;
  /** Its size under the flock: nobody appends to it any more. */
  readonly sizeBytes: number;
}

/**
 * What opening one file for a purge gave: the file, or why not (`missing`:
 * in neither storage; `gone`: deleted meanwhile, by another purge most
 * likely; `locked`: someone else holds its flock).
 */
export type OpenOutcome = OpenedFile | "missing" | "gone" | "locked";

/**
 * Opens, flock()s and stat()s m.`fileId` synchronously (microseconds each,
 * where a trip through libuv's pool cost a wake-up, often a millisecond
 * on a busy machine).
 */
export function openForPurge(paths: MdboxPaths, fileId: number): OpenOutcome {
  const located = paths.locate(fileId);
  if (located === undefined) return "missing";
  let fd: number;
  try {
    fd = fs.openSync(located.path, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "gone";
    throw err;
  }
  let opened: OpenedFile | undefined;
  try {
    // Another purge may have deleted it between our open and our lock.
    const st = flockStillAt(fd, located.path);
    if (typeof st === "string") return st;
    opened = { fileId, path: located.path, alt: located.alt, fd, sizeBytes: st.sizeBytes };
    return opened;
  } finally {
    // Not unlinked by us: its close frees nothing and is quick.
    if (opened === undefined) fs.closeSync(fd);
  }
}

/** Closes a file opened by openForPurge that is not planned after all (not unlinked: a quick close). */
export function closeUnplanned(opened: OpenOutcome | undefined): void {
  if (typeof opened === "object") fs.closeSync(opened.fd);
}
