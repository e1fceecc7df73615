/**
 * Reading the old bytes of the messages an in-place rewrite moves
 * (in-place.ts) in large blocks: one read per block instead of per message,
 * and each message a view of its block instead of a copy of its own.
 *
 * A block is read into again only once the rewrite says it keeps no view of
 * it (release()): pieces keep their views after the rewrite has read on, and
 * even after it has overwritten the file where they came from (the tail a
 * window hands on is written again by the next one). Reusing the blocks
 * spares the page faults of a fresh 8 MiB buffer per window, and the
 * garbage collections its external memory set off.
 *
 * A block may read ahead of what the rewrite has written: those bytes are
 * still old when they are used, because the rewrite writes no further than
 * the messages it has already read.
 */
import { readFullyAt } from "../../shared/read-at.js";

interface Block {
  readonly buffer: Buffer;
  readonly start: number;
  /** Bytes read into it (fewer than its size at the end of the file). */
  readonly length: number;
  /** End of the last view handed out from it. */
  servedEnd: number;
}

export class UnitReader {
  /** Blocks views may still point into, oldest first; the last is the one read from now. */
  private readonly inUse: Block[] = [];
  private readonly free: Buffer[] = [];

  /** @param blockBytes bytes read at a time (more when one message is larger). */
  constructor(
    private readonly fd: number,
    private readonly blockBytes: number,
  ) {}

  /** @returns the file's bytes [start, end), read now unless the current block holds them. */
  read(start: number, end: number): Buffer {
    let block = this.inUse.at(-1);
    if (!block || start < block.start || end > block.start + block.length) {
      const size = Math.max(this.blockBytes, end - start);
      const reused = this.free.findIndex((b) => b.length >= size);
      const buffer = reused >= 0 ? this.free.splice(reused, 1)[0] : Buffer.allocUnsafe(size);
      block = { buffer, start, length: readFullyAt(this.fd, buffer, start, size), servedEnd: start };
      this.inUse.push(block);
    }
    block.servedEnd = Math.max(block.servedEnd, end);
    return block.buffer.subarray(start - block.start, end - block.start);
  }

  /** The caller keeps no view of the file's bytes before `offset` any more. */
  release(offset: number): void {
    while (this.inUse.length > 1 && this.inUse[0].servedEnd <= offset) this.free.push(this.inUse.shift()!.buffer);
  }
}
