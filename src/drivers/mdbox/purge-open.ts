/**
 * Opening the m.N files a purge rewrites, each under its flock, and
 * starting the read of its bytes at once: the purge opens the next file
 * before it plans the current one, so that the read (milliseconds of a
 * pool thread per 10 MiB file) overlaps the planning and copying on the
 * main thread instead of following it.
 */
import * as fs from "node:fs";
import { tryFlockExclusive } from "../dbox/flock.js";
import type { WholeFileReader } from "../../shared/whole-file-reader.js";
import type { MdboxPaths } from "./paths.js";
import { outcomeOf, type Outcome } from "../../shared/outcome.js";
import { closeOnPool } from "../../shared/fd-pool.js";

/** An m.N open read-only under its flock, its bytes on the way. */
export interface OpenedFile {
  readonly fileId: number;
  readonly path: string;
  readonly alt: boolean;
  /** Holds the flock until closed. */
  readonly fd: number;
  /** The read's outcome: nobody waits for the next file's read yet. */
  readonly read: Promise<Outcome<Uint8Array>>;
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
 * on a busy machine), then starts reading it whole into `reader`'s buffer,
 * which must not be read into again before the bytes are used.
 */
export function openForPurge(paths: MdboxPaths, fileId: number, reader: WholeFileReader): OpenOutcome {
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
    if (!tryFlockExclusive(fd, located.path)) return "locked";
    // Another purge may have deleted it between our open and our lock.
    const st = fs.fstatSync(fd);
    const now = fs.statSync(located.path, { throwIfNoEntry: false });
    if (now === undefined || now.ino !== st.ino) return "gone";
    const read = outcomeOf(reader.read(fd, st.size));
    opened = { fileId, path: located.path, alt: located.alt, fd, read };
    return opened;
  } finally {
    // Not unlinked by us: its close frees nothing and is quick.
    if (opened === undefined) fs.closeSync(fd);
  }
}

/** Closes a file opened by openForPurge that is not planned after all, once its read has ended. */
export async function closeUnplanned(opened: OpenOutcome | undefined): Promise<void> {
  if (typeof opened !== "object") return;
  await opened.read;
  await closeOnPool(opened.fd);
}
