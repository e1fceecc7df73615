/**
 * Reading new/ and cur/ as Dovecot's maildir_scan_dir() does: the
 * directory's mtime is taken before its entries are read (a change during
 * the read then shows up as a newer mtime next time), names starting with
 * "." are skipped, and new/ is read before cur/ so that a file moved from
 * new/ to cur/ meanwhile is still seen once.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { stampOf, type FileStamp } from "./index-header.js";

export type MaildirSubdir = "new" | "cur";

/** Where a message file is: its directory and full name (with `:2,` flags). */
export interface MaildirFile {
  readonly dir: MaildirSubdir;
  readonly name: string;
}

/** One directory as read. */
export interface DirListing {
  readonly stamp: FileStamp;
  /** Seconds when the read began (the header's check time). */
  readonly checkTime: number;
  readonly names: readonly string[];
}

/** @returns the stamp of `dir`, as the quick check compares it. */
export function statDirStamp(dir: string): FileStamp {
  return stampOf(fs.statSync(dir, { bigint: true }));
}

/** Reads `<mailDir>/<sub>`: mtime first, then the names (dot files skipped). */
export function listMaildirSubdir(mailDir: string, sub: MaildirSubdir): DirListing {
  const dir = path.join(mailDir, sub);
  const checkTime = Math.floor(Date.now() / 1000);
  const stamp = statDirStamp(dir);
  // opendir() rather than readdir(): libuv's scandir sorts the names, which
  // for 100k files costs more than reading them (measured 55-100 ms vs 135-280 ms).
  const names: string[] = [];
  const handle = fs.opendirSync(dir, { bufferSize: 1024 });
  try {
    for (let e = handle.readSync(); e !== null; e = handle.readSync()) if (e.name.charCodeAt(0) !== 46 /* "." */) names.push(e.name);
  } finally {
    handle.closeSync();
  }
  return { stamp, checkTime, names };
}

/** Full path of a message file. */
export function maildirFilePath(mailDir: string, file: MaildirFile): string {
  return path.join(mailDir, file.dir, file.name);
}
