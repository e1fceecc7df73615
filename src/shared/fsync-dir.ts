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
