/**
 * A forward-moving window over a file, for walks that need a few bytes here
 * and there (message headers and metadata) but not the bodies in between:
 * a storage rebuild reads every m.N, and reading each whole file (10 MB by
 * default, more when rotation is set higher) cost ~90 MiB of peak RSS at
 * 100k messages for buffers that were only looked at in small pieces
 * (issue #11). One buffer is reused for the whole file.
 */
import * as fs from "node:fs";
import { readFullyAt } from "../../shared/read-at.js";

/** Bytes read at a time when less is asked for. */
const CHUNK_BYTES = 256 * 1024;

export class FileWindow {
  /**
   * The file's size when opened (a rebuild holds no lock on m.N files that
   * are only appended to), lowered to where a read found the end first (a
   * save's rollback cut the file): walks that stop at `size` then end.
   */
  size: number;
  /** The file offset of the window's first byte. */
  base = 0;
  private buffer = new Uint8Array(CHUNK_BYTES);
  /** The bytes read, a view of `buffer`: made once per read, not per call (a walk calls twice per message). */
  private view = new Uint8Array(0);

  private constructor(private readonly fd: number) {
    this.size = fs.fstatSync(fd).size;
  }

  /** Opens `path` for reading. @throws fs errors (ENOENT when it is gone). */
  static open(path: string): FileWindow {
    return new FileWindow(fs.openSync(path, "r"));
  }

  /**
   * Makes the window hold file offsets `offset` to `offset + minBytes` (less
   * only where the file ends first).
   * @returns the window's bytes: `bytes[i]` is file byte `base + i`. Valid
   *   until the next call.
   */
  at(offset: number, minBytes: number): Uint8Array {
    const want = Math.min(minBytes, this.size - offset);
    if (offset < this.base || offset + want > this.base + this.view.length) this.fill(offset, Math.max(want, CHUNK_BYTES));
    return this.view;
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  private fill(offset: number, bytes: number): void {
    if (this.buffer.length < bytes) this.buffer = new Uint8Array(bytes);
    const asked = Math.min(bytes, this.size - offset);
    const read = readFullyAt(this.fd, this.buffer, offset, asked);
    // Short only when the file shrank under us: what is there is all there is, and the
    // file ends there (else a walk waiting for bytes up to the old size would read forever).
    if (read < asked) this.size = offset + read;
    this.base = offset;
    this.view = this.buffer.subarray(0, read);
  }
}
