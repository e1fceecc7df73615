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
import { promises as fsp } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import * as path from "node:path";
import { MailCorruptedError } from "../../shared/errors.js";
import { DBOX_MSG_HEADER_SIZE, decodeDboxFileHeader, encodeDboxFileHeader } from "../dbox/file-header.js";
import { tryFlockExclusive } from "../dbox/flock.js";
import { dboxTempFileName } from "../dbox/temp-name.js";
import { newFilePermissionsIn, finishNewFile } from "../../shared/file-mode.js";
import { statIfExists } from "../../shared/stat-if-exists.js";
import { cleanupAfter } from "../../shared/cleanup.js";

/**
 * Size of a target's staging buffer: a few writes per transaction of small
 * messages, and little held for a transaction of many.
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
    private fh: FileHandle | undefined,
    /** Existing: m.N; new: the temp path until published, then m.N. */
    public path: string,
    /** Existing: its id; new: 0 until published. */
    public fileId: number,
    /** Size when opened: where a rollback cuts an existing file back to. */
    readonly startSize: number,
    /** Bytes staged before a write (STAGING_BYTES unless the session says). */
    private readonly stagingBytes: number,
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
  static async openExisting(filePath: string, fileId: number, alt: boolean, expectedSizeBytes: number, stagingBytes = STAGING_BYTES): Promise<AppendTarget | undefined> {
    let fh: FileHandle;
    try {
      fh = await fsp.open(filePath, "r+");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    try {
      if (!(await tryFlockExclusive(fh.fd, filePath))) return close(fh);
      const st = await fh.stat();
      const now = await statIfExists(filePath);
      if (now === undefined || now.ino !== st.ino || now.dev !== st.dev) return close(fh);
      if (st.size !== expectedSizeBytes) return close(fh);
      const head = Buffer.alloc(Math.min(256, st.size));
      await fh.read(head, 0, head.length, 0);
      let ok = false;
      try {
        ok = decodeDboxFileHeader(head, { path: filePath }).header.msgHeaderSize === DBOX_MSG_HEADER_SIZE;
      } catch (err) {
        // A header Dovecot would not append to either: a new file takes the message.
        if (!(err instanceof MailCorruptedError)) throw err;
        ok = false;
      }
      if (!ok) return close(fh);
      return new AppendTarget("existing", alt, fh, filePath, fileId, st.size, stagingBytes);
    } catch (err) {
      await cleanupAfter(err, () => fh.close());
      throw err;
    }
  }

  /** Creates a new temp file in `dir` holding just the file header line (`2 M1e C<now>`). */
  static async createNew(dir: string, alt: boolean, stagingBytes = STAGING_BYTES): Promise<AppendTarget> {
    const tempPath = path.join(dir, dboxTempFileName());
    const perm = newFilePermissionsIn(dir);
    const fh = await fsp.open(tempPath, "wx", perm.mode);
    finishNewFile(fh.fd, perm, tempPath);
    const target = new AppendTarget("new", alt, fh, tempPath, 0, 0, stagingBytes);
    await target.queue(encodeDboxFileHeader({ msgHeaderSize: DBOX_MSG_HEADER_SIZE, createStamp: Math.floor(Date.now() / 1000), unknownItems: [] }));
    return target;
  }

  /** Queues `bytes` at the end (copied). @returns the offset they will have (see queueEncoded). */
  queue(bytes: Uint8Array): number | Promise<number> {
    return this.queueEncoded(bytes.length, (out, at) => out.set(bytes, at));
  }

  /**
   * Queues `size` bytes at the end, which `encode` writes into `out` at `at`
   * (the staging buffer, or one of their own when they do not fit it).
   * @returns the offset they will have: at once when they fit the staging
   *   buffer (a purge places thousands under the map lock, where an await
   *   each was a tenth of its CPU), else once the staged bytes are written.
   */
  queueEncoded(size: number, encode: (out: Uint8Array, at: number) => void): number | Promise<number> {
    if (this.staged + size > this.stagingBytes) return this.queueAfterWrite(size, encode);
    const offset = this.size;
    this.stage(size, encode);
    this.size += size;
    return offset;
  }

  private async queueAfterWrite(size: number, encode: (out: Uint8Array, at: number) => void): Promise<number> {
    const offset = this.size;
    await this.writeStaged();
    if (size > this.stagingBytes) {
      const own = new Uint8Array(size);
      encode(own, 0);
      await this.writeOut(own);
    } else this.stage(size, encode);
    this.size += size;
    return offset;
  }

  /** Encodes `size` bytes at the end of the staging buffer, which has room. */
  private stage(size: number, encode: (out: Uint8Array, at: number) => void): void {
    if (this.staging === undefined) {
      if (this.stagingBytes === STAGING_BYTES && spareStaging !== undefined) {
        this.staging = spareStaging;
        spareStaging = undefined;
      } else this.staging = new Uint8Array(this.stagingBytes);
    }
    encode(this.staging, this.staged);
    this.staged += size;
  }

  /** Writes what is queued and (when `sync`) fdatasyncs all that was written since the last sync. */
  async flush(sync: boolean): Promise<void> {
    await this.writeStaged();
    if (sync && this.unsynced) await this.fh!.datasync();
    this.unsynced = false;
  }

  private async writeStaged(): Promise<void> {
    if (this.staged === 0) return;
    await this.writeOut(this.staging!.subarray(0, this.staged));
    this.staged = 0;
  }

  /** Writes `bytes` at the end of what is on disk. */
  private async writeOut(bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.fh!.write(bytes, done, bytes.length - done, this.written + done);
      done += bytesWritten;
    }
    this.written += bytes.length;
    this.unsynced = true;
  }

  /**
   * Names a new file `finalPath` without replacing anything: link() + unlink()
   * of the temp name.
   * @returns false when `finalPath` exists (pick another id).
   */
  async publish(finalPath: string, fileId: number): Promise<boolean> {
    try {
      await fsp.link(this.path, finalPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw err;
    }
    await fsp.unlink(this.path);
    this.path = finalPath;
    this.fileId = fileId;
    return true;
  }

  /** Takes back what this session wrote: an existing file is cut back (we hold its flock), a new one removed. */
  async rollback(): Promise<void> {
    this.staged = 0;
    if (this.kind === "existing") {
      // Whatever was queued may be on disk in part (a write that failed half-way included).
      if (this.size > this.startSize) await this.fh!.truncate(this.startSize);
    } else {
      await fsp.rm(this.path, { force: true });
    }
  }

  /** Closes the file, which releases the flock. */
  async close(): Promise<void> {
    // Nothing staged is still to be written once the file closes: the buffer can serve another target.
    if (this.stagingBytes === STAGING_BYTES) spareStaging ??= this.staging;
    this.staging = undefined;
    this.staged = 0;
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }
}

async function close(fh: FileHandle): Promise<undefined> {
  await fh.close();
  return undefined;
}
