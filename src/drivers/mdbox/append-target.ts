/**
 * One m.N file a save or purge is writing to: either an existing file it
 * appends to (opened and flock()ed as Dovecot does, held until the map
 * transaction that points at the new bytes is committed, so that no purge
 * can take the file away meanwhile), or a new temp file that gets its
 * `m.<file_id>` name under the map lock.
 *
 * Bytes are queued and written by flush(); data reaches the disk before the
 * map records that point at it (body first, then map, then mailbox).
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

/** An m.N (existing, flock()ed) or a new temp file that one session appends to. */
export class AppendTarget {
  /** Bytes queued by add(), not yet written. */
  private pending: Uint8Array[] = [];
  /** File size on disk (what flush() has written). */
  private written: number;
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
  static async openExisting(filePath: string, fileId: number, alt: boolean, expectedSizeBytes: number): Promise<AppendTarget | undefined> {
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
      return new AppendTarget("existing", alt, fh, filePath, fileId, st.size);
    } catch (err) {
      await cleanupAfter(err, () => fh.close());
      throw err;
    }
  }

  /** Creates a new temp file in `dir` holding just the file header line (`2 M1e C<now>`). */
  static async createNew(dir: string, alt: boolean): Promise<AppendTarget> {
    const tempPath = path.join(dir, dboxTempFileName());
    const perm = newFilePermissionsIn(dir);
    const fh = await fsp.open(tempPath, "wx", perm.mode);
    finishNewFile(fh.fd, perm, tempPath);
    const target = new AppendTarget("new", alt, fh, tempPath, 0, 0);
    target.queue(encodeDboxFileHeader({ msgHeaderSize: DBOX_MSG_HEADER_SIZE, createStamp: Math.floor(Date.now() / 1000), unknownItems: [] }));
    return target;
  }

  /**
   * Queues `bytes` at the end (kept, not copied: the caller must not change
   * them before flush()). A view that continues the last one queued (a
   * purge's run of live messages out of one file) is merged with it.
   * @returns the offset they will have.
   */
  queue(bytes: Uint8Array): number {
    const offset = this.size;
    const last = this.pending[this.pending.length - 1];
    if (last !== undefined && last.buffer === bytes.buffer && last.byteOffset + last.length === bytes.byteOffset) {
      this.pending[this.pending.length - 1] = new Uint8Array(last.buffer, last.byteOffset, last.length + bytes.length);
    } else {
      this.pending.push(bytes);
    }
    this.size += bytes.length;
    return offset;
  }

  /** Writes what is queued (gathered by writev, not first copied into one buffer) and (when `sync`) fdatasyncs it. */
  async flush(sync: boolean): Promise<void> {
    if (this.pending.length === 0) return;
    let pieces = this.pending;
    while (pieces.length > 0) {
      const { bytesWritten } = await this.fh!.writev(pieces, this.written);
      this.written += bytesWritten;
      pieces = piecesAfter(pieces, bytesWritten);
    }
    this.pending = [];
    if (sync) await this.fh!.datasync();
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
    this.pending = [];
    if (this.kind === "existing") {
      if (this.written > this.startSize) await this.fh!.truncate(this.startSize);
    } else {
      await fsp.rm(this.path, { force: true });
    }
  }

  /** Closes the file, which releases the flock. */
  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }
}

/** What a short writev of `pieces` left unwritten after `written` bytes. */
function piecesAfter(pieces: readonly Uint8Array[], written: number): Uint8Array[] {
  let i = 0;
  let left = written;
  while (i < pieces.length && left >= pieces[i].length) left -= pieces[i++].length;
  const rest = pieces.slice(i);
  if (rest.length > 0 && left > 0) rest[0] = rest[0].subarray(left);
  return rest;
}

async function close(fh: FileHandle): Promise<undefined> {
  await fh.close();
  return undefined;
}
