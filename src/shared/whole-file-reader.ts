/**
 * Reading whole files whose size is known, one after another, into one
 * reused buffer: one large read each instead of FileHandle.readFile()'s
 * 512 KiB ones, and one buffer for all of them instead of a fresh one per
 * file, which lingered as external memory until a GC (a purge reads every
 * m.N it rewrites, 10 MiB each by default: 11 of them made most of its peak
 * RSS at 100k messages). The bytes are a Uint8Array, whose indexOf is V8's
 * builtin rather than Buffer's binding call (the dbox metadata walk
 * searches for a line feed per item).
 */
import { readOnPool } from "./fd-pool.js";

/** One growing buffer that whole files are read into in turn. */
export class WholeFileReader {
  private buffer = new Uint8Array(0);

  /**
   * Reads descriptor `fd` from offset 0 up to `sizeBytes` (its size as stat()ed by the
   * caller, who keeps it from growing, e.g. under a lock).
   * @returns the bytes, a view of the shared buffer valid until the next
   *   read(); shorter than `sizeBytes` only if the file shrank meanwhile.
   */
  async read(fd: number, sizeBytes: number): Promise<Uint8Array> {
    if (this.buffer.length < sizeBytes) {
      // Not zero-filled first: every byte returned is read from the file.
      const fresh = Buffer.allocUnsafeSlow(sizeBytes);
      this.buffer = new Uint8Array(fresh.buffer, fresh.byteOffset, sizeBytes);
    }
    const bytes = this.buffer.subarray(0, sizeBytes);
    let done = 0;
    while (done < sizeBytes) {
      // On libuv's pool: a whole m.N is megabytes, and the event loop goes on meanwhile.
      const bytesRead = await readOnPool(fd, bytes, done, sizeBytes - done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === sizeBytes ? bytes : bytes.subarray(0, done);
  }
}
