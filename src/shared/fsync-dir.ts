import * as fs from "node:fs";
import { cleanupAfter } from "./cleanup.js";
import { closeOnPool, fsyncOnPool } from "./fd-pool.js";

/**
 * fsync()s a directory, so that a rename into it survives a crash (Dovecot's
 * fdatasync_path() after moving saved files into new/ or cur/).
 */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * fsyncDir on libuv's pool: the sync waits for the disk while the caller goes on (a purge: with its map commit).
 * Async, so that an open error is a rejection like a sync's: callers start several and await them all.
 */
export async function fsyncDirOnPool(dir: string): Promise<void> {
  const fd = fs.openSync(dir, "r");
  try {
    await fsyncOnPool(fd);
  } catch (err) {
    await cleanupAfter(err, () => closeOnPool(fd));
    throw err;
  }
  await closeOnPool(fd);
}
