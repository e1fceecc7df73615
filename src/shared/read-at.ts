import * as fs from "node:fs";

/**
 * Reads up to `length` bytes at `position` of `fd` into the start of `buf`,
 * again after a short read (pread may return less than asked).
 * @returns how many were read: fewer only at the end of the file.
 */
export function readFullyAt(fd: number, buf: Uint8Array, position: number, length: number): number {
  let got = 0;
  while (got < length) {
    const n = fs.readSync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
