/**
 * One m.N file a save or purge is writing to: either an existing file it
 * appends to (opened and flock()ed as Dovecot does, held until the map
 * transaction that points at the new bytes is committed, so that no purge
 * can take the file away meanwhile), or a new temp file that gets its
 * `m.<file_id>` name under the map lock.
 *
 * Bytes are staged in one buffer per file and written whenever it fills and
 * by flush(); flush() syncs them, so data reaches the disk before the map
 * records that point at it (body first, then map, then mailbox). Until the
 * map points at them, written bytes are only an uncommitted tail, which
 * rollback() takes back (and which a crash leaves unreferenced, as it did a
 * half-written flush before). Staging bounds what a large transaction holds
 * here, instead of a copy of every record until flush() and then their
 * concatenation.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { MailCorruptedError } from "../../shared/errors.js";
import { cleanupAfterSync } from "../../shared/cleanup.js";
import { DBOX_MSG_HEADER_SIZE, decodeDboxFileHeader, encodeDboxFileHeader } from "../dbox/file-header.js";
import { flockStillAt } from "../dbox/flock.js";
import { dboxTempFileName } from "../dbox/temp-name.js";
import { newFilePermissionsIn, finishNewFile } from "../../shared/file-mode.js";
import { fdatasyncOnPool } from "../../shared/fd-pool.js";

/**
 * Size of a target's staging buffer: a few writes per transaction of small
 * messages, and little held for a transaction of many. A purge's copies too:
 * 1 MiB per file was fewer writes, but fresh memory costs more here than
 * synchronous writes do (a 20k purge: 500 fewer page faults, its copy phase
 * 46-95 -> 18-27 ms on a loaded machine).
 */
const STAGING_BYTES = 256 * 1024;

/**
 * A staging buffer a closed target left, for the next one: a save per
 * transaction (an import commits hundreds) would otherwise allocate one
 * each, garbage that lingers until a full GC.
 */
let spareStaging: Uint8Array | undefined;

/** An m.N (existing, flock()ed) or a new temp file that one session appends to. */
export class AppendTarget {
  /** Queued bytes not written yet: staging[0, staged). Allocated at the first queue(). */
  private staging: Uint8Array | undefined;
  private staged = 0;
  /** File size on disk (what has been written). */
  private written: number;
  /** Bytes were written since the last sync. */
  private unsynced = false;
  /** Messages this session put here (Dovecot's rotation rule is laxer for them). */
  appended = false;

  private constructor(
    readonly kind: "existing" | "new",
    readonly alt: boolean,
    /** The open descriptor; undefined once closed. */
    private fd: number | undefined,
    /** Existing: m.N; new: the temp path until published, then m.N. */
    public path: string,
    /** Existing: its id; new: 0 until published. */
    public fileId: number,
    /** Size when opened: where a rollback cuts an existing file back to. */
    readonly startSize: number,
  ) {
    this.written = startSize;
    this.size = startSize;
  }

  /** Logical size, queued bytes included: the offset the next message gets. */
  size: number;

  /**
   * Opens an existing m.N for appending, if Dovecot would: the flock must be
   * free, the file must still be the one at `filePath` (not unlinked by a
   * purge after we opened it), end exactly where the map says (no
   * uncommitted tail), and have a version 2 header with 30-byte message
   * headers.
   * @returns the target, or undefined when the file is not usable.
   */
  static openExisting(filePath: string, fileId: number, alt: boolean, expectedSizeBytes: number): AppendTarget | undefined {
    let fd: number;
    try {
      fd = fs.openSync(filePath, "r+");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    let usable: boolean;
    try {
      usable = usableForAppend(fd, filePath, expectedSizeBytes);
    } catch (err) {
      // Closing releases the flock when it was taken; the error above is the one to report.
      cleanupAfterSync(err, () => fs.closeSync(fd));
      throw err;
    }
    if (!usable) {
      fs.closeSync(fd);
      return undefined;
    }
    return new AppendTarget("existing", alt, fd, filePath, fileId, expectedSizeBytes);
  }

  /** Creates a new temp file in `dir` holding just the file header line (`2 M1e C<now>`). */
  static createNew(dir: string, alt: boolean): AppendTarget {
    const tempPath = path.join(dir, dboxTempFileName());
    const perm = newFilePermissionsIn(dir);
    const fd = fs.openSync(tempPath, "wx", perm.mode);
    try {
      finishNewFile(fd, perm, tempPath);
    } catch (err) {
      cleanupAfterSync(err, () => fs.closeSync(fd));
      cleanupAfterSync(err, () => fs.rmSync(tempPath, { force: true }));
      throw err;
    }
    const target = new AppendTarget("new", alt, fd, tempPath, 0, 0);
    target.queue(encodeDboxFileHeader({ msgHeaderSize: DBOX_MSG_HEADER_SIZE, createStamp: Math.floor(Date.now() / 1000), unknownItems: [] }));
    return target;
  }

  /**
   * Queues `bytes` at the end (copied into the staging buffer, or written at
   * once when they do not fit it; the staged bytes are written first when it
   * is full), without a closure: a purge queues thousands of copies.
   * @returns the offset they will have.
   */
  queue(bytes: Uint8Array): number {
    const offset = this.size;
    const staging = this.roomFor(bytes.length);
    if (staging === undefined) this.writeOut(bytes);
    else {
      staging.set(bytes, this.staged);
      this.staged += bytes.length;
    }
    this.size += bytes.length;
    return offset;
  }

  /**
   * Queues `size` bytes at the end, which `encode` writes into `out` at `at`
   * (the staging buffer, or one of their own when they do not fit it; the
   * staged bytes are written first when it is full).
   * @returns the offset they will have.
   */
  queueEncoded(size: number, encode: (out: Uint8Array, at: number) => void): number {
    const offset = this.size;
    const staging = this.roomFor(size);
    if (staging === undefined) {
      const own = new Uint8Array(size);
      encode(own, 0);
      this.writeOut(own);
    } else {
      encode(staging, this.staged);
      this.staged += size;
    }
    this.size += size;
    return offset;
  }

  /**
   * Makes room for `size` more bytes in the staging buffer, writing what it
   * holds when they would not fit.
   * @returns the staging buffer, or undefined when `size` is larger than it.
   */
  private roomFor(size: number): Uint8Array | undefined {
    if (this.staged + size > STAGING_BYTES) {
      this.writeStaged();
      if (size > STAGING_BYTES) return undefined;
    }
    if (this.staging === undefined) {
      this.staging = spareStaging ?? new Uint8Array(STAGING_BYTES);
      spareStaging = undefined;
    }
    return this.staging;
  }

  /** Writes what is queued and (when `sync`) fdatasyncs all that was written since the last sync. */
  async flush(sync: boolean): Promise<void> {
    this.writeStaged();
    // On libuv's pool: it waits for the disk, and the syncs of a session's files overlap.
    if (sync && this.unsynced) await fdatasyncOnPool(this.fd!);
    this.unsynced = false;
  }

  private writeStaged(): void {
    if (this.staged === 0) return;
    this.writeOut(this.staging!.subarray(0, this.staged));
    this.staged = 0;
  }

  /** Writes `bytes` at the end of what is on disk. */
  private writeOut(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) done += fs.writeSync(this.fd!, bytes, done, bytes.length - done, this.written + done);
    this.written += bytes.length;
    this.unsynced = true;
  }

  /**
   * Names a new file `finalPath` without replacing anything: link() + unlink()
   * of the temp name.
   * @returns false when `finalPath` exists (pick another id).
   */
  publish(finalPath: string, fileId: number): boolean {
    try {
      fs.linkSync(this.path, finalPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw err;
    }
    fs.unlinkSync(this.path);
    this.path = finalPath;
    this.fileId = fileId;
    return true;
  }

  /** Takes back what this session wrote: an existing file is cut back (we hold its flock), a new one removed. */
  rollback(): void {
    this.staged = 0;
    if (this.kind === "existing") {
      // Whatever was queued may be on disk in part (a write that failed half-way included).
      if (this.size > this.startSize) fs.ftruncateSync(this.fd!, this.startSize);
    } else {
      fs.rmSync(this.path, { force: true });
    }
  }

  /** Closes the file, which releases the flock. */
  close(): void {
    // Nothing staged is still to be written once the file closes: the buffer can serve another target.
    spareStaging ??= this.staging;
    this.staging = undefined;
    this.staged = 0;
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Whether Dovecot would append to the m.N open at `fd`: its flock taken
 * (held from here on), still the file at `filePath`, ending where the map
 * says, with a version 2 header of 30-byte message headers.
 */
function usableForAppend(fd: number, filePath: string, expectedSizeBytes: number): boolean {
  const st = flockStillAt(fd, filePath);
  if (typeof st === "string") return false;
  if (st.sizeBytes !== expectedSizeBytes) return false;
  const head = Buffer.alloc(Math.min(256, st.sizeBytes));
  fs.readSync(fd, head, 0, head.length, 0);
  try {
    return decodeDboxFileHeader(head, { path: filePath }).header.msgHeaderSize === DBOX_MSG_HEADER_SIZE;
  } catch (err) {
    // A header Dovecot would not append to either: a new file takes the message.
    if (!(err instanceof MailCorruptedError)) throw err;
    return false;
  }
}
