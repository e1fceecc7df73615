/**
 * A forward-moving window over a file, for walks that need a few bytes here
 * and there (message headers and metadata) but not the bodies in between:
 * a storage rebuild reads every m.N, and reading each whole file (10 MB by
 * default, more when rotation is set higher) cost ~90 MiB of peak RSS at
 * 100k messages for buffers that were only looked at in small pieces
 * (issue #11). One buffer is reused for the whole file, and a purge or a
 * rebuild passes it on from file to file (`previous`): memory touched for the first
 * time is slow on these VMs (40 ms for a fresh 10 MiB buffer, against 1 ms
 * to read into it again), and a purge's two whole-file read buffers were
 * most of its time at 20k messages.
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
  /** The bytes read, a view of `buffer`: made once per read, not per call (a walk calls twice per message). */
  private view: Uint8Array = new Uint8Array(0);

  private constructor(
    private readonly fd: number,
    size: number,
    private buffer: Uint8Array,
    /** close() closes `fd` (the window opened it). */
    private readonly owned: boolean,
  ) {
    this.size = size;
  }

  /**
   * Opens `path` for reading. `previous`: a window done with, whose buffer
   * this one reads into (a rebuild's walk from m.N to m.N).
   * @throws fs errors (ENOENT when it is gone).
   */
  static open(path: string, previous?: FileWindow): FileWindow {
    const fd = fs.openSync(path, "r");
    try {
      return new FileWindow(fd, fs.fstatSync(fd).size, previous?.buffer ?? new Uint8Array(CHUNK_BYTES), true);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  /**
   * A window over `fd`, `sizeBytes` long (as the caller fstat()ed it), which
   * the caller keeps open and closes: a purge holds the file's flock on it.
   * `previous`: a window done with, whose buffer this one reads into.
   */
  static over(fd: number, sizeBytes: number, previous?: FileWindow): FileWindow {
    return new FileWindow(fd, sizeBytes, previous?.buffer ?? new Uint8Array(CHUNK_BYTES), false);
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

  /** Closes the descriptor of a window that open() made (over()'s stays the caller's). */
  close(): void {
    if (this.owned) fs.closeSync(this.fd);
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
