/**
 * Random-access byte sources for the mbox scanner. The scanner asks only for
 * small windows (a From_ line, a header line, a search chunk), so a file is
 * read through one reusable window buffer and memory stays bounded whatever
 * the mbox size. A buffer source returns views without copying.
 */
import * as fs from "node:fs";
import { readFullyAt } from "../../shared/read-at.js";
import { assert } from "../../shared/errors.js";

export interface ByteSource {
  /** Total length in bytes. */
  readonly size: number;
  /**
   * @returns the bytes of [offset, offset+length) clipped at `size`. The
   *   result may be a view that is only valid until the next read().
   */
  read(offset: number, length: number): Uint8Array;
  /**
   * Like read(), but may return fewer than `maxLength` bytes (what is at hand
   * without I/O), though at least `minLength` unless the source ends first.
   * Searches use it so that walking a file line by line does not re-read it.
   */
  peek(offset: number, maxLength: number, minLength: number): Uint8Array;
  /**
   * @returns the byte at `offset`, or -1 at or past `size`. Unlike read(),
   *   makes no view: the scanner asks for a byte or two on every line.
   */
  byteAt(offset: number): number;
  /**
   * The reader will ask for nothing before `offset` until it says otherwise
   * (a scan: the start of the message it is in). A file source then keeps
   * the bytes from there in its window when it reads on, instead of reading
   * the message's start again once the scan comes back to its header.
   */
  keepFrom?(offset: number): void;
}

/** @returns a source over `data` (reads are zero-copy views). */
export function bufferSource(data: Uint8Array): ByteSource {
  const read = (offset: number, length: number) => data.subarray(offset, Math.min(offset + length, data.length));
  return { size: data.length, read, peek: read, byteAt: (offset) => (offset >= 0 && offset < data.length ? data[offset] : -1) };
}

/** Default window of {@link FileSource}. */
export const FILE_SOURCE_WINDOW_BYTES = 64 * 1024;

/**
 * A source over an open file descriptor (synchronous reads through one
 * window). `size` is fixed at construction: bytes appended later are not seen.
 */
export class FileSource implements ByteSource {
  readonly size: number;
  private window: Uint8Array;
  private windowOffset = 0;
  private windowLength = 0;
  /** What keepFrom() said: bytes before it are not asked for again soon. */
  private keep = -1;

  /**
   * `scratch`: a buffer to use as the window instead of a new one, for a
   * caller that reads one message after another (a fresh zeroed window per
   * message cost an import of 20,000 mbox messages about a second). What
   * this source returned is valid until the scratch's next use.
   */
  constructor(
    private readonly fd: number,
    windowBytes: number = FILE_SOURCE_WINDOW_BYTES,
    scratch?: Uint8Array,
    /** The file's size, when the caller knows it (under a lock); else fstat's. */
    knownSize?: number,
  ) {
    this.size = knownSize ?? fs.fstatSync(fd).size;
    this.window = scratch !== undefined && scratch.length >= windowBytes ? scratch : new Uint8Array(windowBytes);
  }

  peek(offset: number, maxLength: number, minLength: number): Uint8Array {
    const end = Math.min(offset + maxLength, this.size);
    const windowEnd = this.windowOffset + this.windowLength;
    if (offset >= this.windowOffset && Math.min(end, offset + minLength) <= windowEnd) {
      return this.window.subarray(offset - this.windowOffset, Math.min(end, windowEnd) - this.windowOffset);
    }
    return this.read(offset, Math.min(maxLength, this.window.length));
  }

  byteAt(offset: number): number {
    if (offset >= this.windowOffset && offset < this.windowOffset + this.windowLength) return this.window[offset - this.windowOffset];
    return offset < this.size ? this.read(offset, 1)[0] : -1;
  }

  keepFrom(offset: number): void {
    this.keep = offset;
  }

  read(offset: number, length: number): Uint8Array {
    assert(offset >= 0 && length >= 0, "FileSource.read range");
    const end = Math.min(offset + length, this.size);
    if (offset >= end) return new Uint8Array(0);
    if (offset >= this.windowOffset && end <= this.windowOffset + this.windowLength) {
      return this.window.subarray(offset - this.windowOffset, end - this.windowOffset);
    }
    // A request larger than the window gets its own buffer of exactly that size;
    // callers bound their requests.
    const grown = end - offset > this.window.length;
    if (grown) this.window = new Uint8Array(end - offset);
    // The new window starts at the kept offset when the request still fits
    // after it: a scan that searched past the window's end comes back to the
    // message's header, which then is at hand instead of read a second time.
    const start = this.keep >= 0 && this.keep <= offset && end - this.keep <= this.window.length ? this.keep : offset;
    const windowEnd = this.windowOffset + this.windowLength;
    // Bytes [start, windowEnd) the window holds already move to its front;
    // only what follows them is read.
    const held = !grown && start >= this.windowOffset && start < windowEnd ? windowEnd - start : 0;
    if (held > 0) this.window.copyWithin(0, start - this.windowOffset, this.windowLength);
    const got = held + readFullyAt(this.fd, this.window.subarray(held), start + held, Math.min(this.window.length, this.size - start) - held);
    this.windowOffset = start;
    this.windowLength = got;
    return this.window.subarray(offset - start, Math.min(end, start + got) - start);
  }
}
