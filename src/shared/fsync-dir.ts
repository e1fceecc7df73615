import * as fs from "node:fs";

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

/** fsyncDir on libuv's pool: the sync waits for the disk while the caller goes on (a purge: with its map commit). */
export function fsyncDirOnPool(dir: string): Promise<void> {
  const fd = fs.openSync(dir, "r");
  return new Promise((resolve, reject) => {
    fs.fsync(fd, (err) => {
      fs.close(fd, (closeErr) => {
        const failed = err ?? closeErr;
        if (failed) reject(failed);
        else resolve();
      });
    });
  });
}
