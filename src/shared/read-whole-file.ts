/**
 * Reading a whole file whose size is known into a plain Uint8Array: one
 * large read instead of FileHandle.readFile()'s 512 KiB ones (a purge reads
 * every m.N it rewrites, 10 MiB each by default), and a Uint8Array, whose
 * indexOf is V8's builtin rather than Buffer's binding call (the dbox
 * metadata walk searches for a line feed per item).
 */
import type { FileHandle } from "node:fs/promises";

/**
 * Reads `fh` from offset 0 up to `sizeBytes` (its size as stat()ed by the
 * caller, who keeps it from growing, e.g. under a lock).
 * @returns the bytes; shorter than `sizeBytes` only if the file shrank meanwhile.
 */
export async function readWholeFile(fh: FileHandle, sizeBytes: number): Promise<Uint8Array> {
  // Not zero-filled first: every byte returned is read from the file.
  const buffer = Buffer.allocUnsafeSlow(sizeBytes);
  const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, sizeBytes);
  let done = 0;
  while (done < sizeBytes) {
    const { bytesRead } = await fh.read(bytes, done, sizeBytes - done, done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === sizeBytes ? bytes : bytes.subarray(0, done);
}
