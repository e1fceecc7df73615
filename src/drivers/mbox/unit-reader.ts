/**
 * Reading the old bytes of the messages an in-place rewrite moves
 * (in-place.ts) in large blocks: one read per block instead of per message,
 * and each message a view of its block instead of a copy of its own.
 *
 * Every block is a fresh buffer, never reused: pieces keep their views
 * after the rewrite has read on, and even after it has overwritten the
 * file where they came from (the tail a window hands on is written again by
 * the next one). A block may read ahead of what the rewrite has written:
 * those bytes are still old when they are used, because the rewrite writes
 * no further than the messages it has already read.
 */
import { readRange } from "./file-messages.js";

export class UnitReader {
  private block: Buffer = Buffer.alloc(0);
  private blockStart = 0;

  /** @param blockBytes bytes read at a time (more when one message is larger). */
  constructor(
    private readonly fd: number,
    private readonly blockBytes: number,
  ) {}

  /** @returns the file's bytes [start, end), read now unless the last block holds them. */
  read(start: number, end: number): Buffer {
    if (start < this.blockStart || end > this.blockStart + this.block.length) {
      this.block = readRange(this.fd, start, Math.max(this.blockBytes, end - start));
      this.blockStart = start;
    }
    return this.block.subarray(start - this.blockStart, end - this.blockStart);
  }
}
