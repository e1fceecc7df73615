/**
 * File I/O for dbox mail files: publishing new u.N / m.N files through temp
 * files, appending to m.N files, reading one message by offset, listing.
 * Everything about the bytes lives in file-format.ts; this module only
 * decides which bytes to read and write, and in which order, so that a crash
 * never leaves a half-written file under a real name.
 */
import * as fs from "node:fs";
import { promises as fsp } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import * as path from "node:path";
import { MailCorruptedError, MailstoreError } from "../../shared/errors.js";
import { readFullyAt } from "../../shared/read-at.js";
import { decodeDboxFileHeader, DBOX_MSG_HEADER_SIZE, type DecodedDboxFileHeader } from "./file-header.js";
import { dboxMessageSize, decodeDboxFile, decodeDboxMessageAt, encodeDboxMessages, type DboxFile, type DboxMessage, type DboxMessageInput } from "./file-format.js";
import { flockStillAt } from "./flock.js";
import { decodeDboxMessageHeader } from "./message-header.js";
import { findDboxMetadataEnd } from "./metadata.js";
import { mdboxFileHasRoom } from "./rotation.js";
import { dboxTempFileName } from "./temp-name.js";
import { newFilePermissionsIn, finishNewFile } from "../../shared/file-mode.js";
import { cleanupAfter } from "../../shared/cleanup.js";
import { fsyncDir } from "../../shared/fsync-dir.js";

/** SDBOX_MAIL_FILE_PREFIX */
export const SDBOX_FILE_PREFIX = "u.";
/** MDBOX_MAIL_FILE_PREFIX */
export const MDBOX_FILE_PREFIX = "m.";

/** @returns `u.<uid>`. */
export function sdboxFileName(uid: number): string {
  return `${SDBOX_FILE_PREFIX}${uid}`;
}

/** @returns `m.<fileId>`. */
export function mdboxFileName(fileId: number): string {
  return `${MDBOX_FILE_PREFIX}${fileId}`;
}

function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === code;
}

export interface WriteDboxFileOptions {
  /** File mode before the umask (default 0o666, as Dovecot's open()). */
  readonly mode?: number;
  /** fdatasync the file before it gets its name (default true). */
  readonly syncFile?: boolean;
  /** fsync the directory after the name appears (default true). */
  readonly syncDir?: boolean;
}

/**
 * Writes `bytes` to a new temp file in `dir` named as Dovecot names them
 * (`.temp.<secs>.P<pid>Q<n>M<usecs>.<host>`), and syncs it.
 * @returns the temp file's path; give it to publishDboxTempFile() at commit,
 *   or unlink it on rollback.
 * @throws the fs error; no temp file is left behind on failure.
 */
export async function createDboxTempFile(dir: string, bytes: Uint8Array, opts: WriteDboxFileOptions = {}): Promise<string> {
  const tempPath = path.join(dir, dboxTempFileName());
  const perm = newFilePermissionsIn(dir);
  const fh = await fsp.open(tempPath, "wx", opts.mode ?? perm.mode);
  try {
    finishNewFile(fh.fd, perm, tempPath);
    await fh.writeFile(bytes);
    if (opts.syncFile ?? true) await fh.datasync();
  } catch (err) {
    await cleanupAfter(err, () => fh.close());
    await cleanupAfter(err, () => fsp.rm(tempPath, { force: true }));
    throw err;
  }
  await fh.close();
  return tempPath;
}

/**
 * Gives a temp file its final name. Uses link() + unlink() rather than
 * rename() so that an existing u.N / m.N is never replaced: the name is
 * claimed atomically or not at all.
 * @throws MailstoreError ALREADY_EXISTS when `finalPath` exists (the temp
 *   file is kept, for the caller to retry or remove); other fs errors as is.
 */
export async function publishDboxTempFile(tempPath: string, finalPath: string, opts: WriteDboxFileOptions = {}): Promise<void> {
  try {
    await fsp.link(tempPath, finalPath);
  } catch (err) {
    if (isErrno(err, "EEXIST")) throw new MailstoreError("ALREADY_EXISTS", "dbox file already exists", { path: finalPath });
    throw err;
  }
  await fsp.unlink(tempPath);
  if (opts.syncDir ?? true) fsyncDir(path.dirname(finalPath));
}

/**
 * Writes a complete new file `dir/name` (e.g. `u.7`, `m.3`) through a temp file.
 * @returns the final path.
 * @throws as createDboxTempFile() and publishDboxTempFile(); the temp file is
 *   removed when publishing fails.
 */
export async function writeDboxFile(dir: string, name: string, bytes: Uint8Array, opts: WriteDboxFileOptions = {}): Promise<string> {
  const tempPath = await createDboxTempFile(dir, bytes, opts);
  const finalPath = path.join(dir, name);
  try {
    await publishDboxTempFile(tempPath, finalPath, opts);
  } catch (err) {
    await cleanupAfter(err, () => fsp.rm(tempPath, { force: true }));
    throw err;
  }
  return finalPath;
}

/**
 * Reads and decodes a whole u.N or m.N file.
 * @throws MailCorruptedError for a malformed file; fs errors as is.
 */
export async function readDboxFile(filePath: string): Promise<DboxFile> {
  return decodeDboxFile(await fsp.readFile(filePath), { path: filePath });
}

/** How much to read at once when the length is not known yet. */
const READ_CHUNK = 4096;

/** Read-ahead of a sequential walk through an m.N file (see DboxMessageReader). */
const READ_AHEAD_BYTES = 256 * 1024;

/** Where DboxMessageReader's last record read is in the bytes it returned. */
interface RecordFound {
  /** Where the record starts. */
  at: number;
  /** The end of the bytes read for it. */
  limit: number;
  /** The body size in the message header (when `end` ≥ 0). */
  bodySize: number;
  /** Where the metadata's end line ends, or -1 when not found (the full decode must say why). */
  end: number;
}

/**
 * Reads up to `length` bytes at `position` (fewer at EOF). Synchronous, as
 * Dovecot reads: a message read is a few syscalls of a few µs each, where a
 * promise per read costs a thread-pool round trip (fetch of 20,000 mdbox
 * messages: 5.4 s with fs.promises, most of it waiting for the pool).
 */
function readAt(fd: number, position: number, length: number): Uint8Array {
  // A buffer of its own, not a slice of Buffer's pool: that keeps its 8 KiB pool alive as long as the message is (a fetch's peak RSS: 150 MB against 115 MB), for no measurable speed.
  const buf = new Uint8Array(length);
  const got = readFullyAt(fd, buf, position, length);
  return got === length ? buf : buf.subarray(0, got);
}

/** Reads the header line, growing the read until its LF (bounded by the file size). */
function readFileHeader(fd: number, fileSize: number, filePath: string): DecodedDboxFileHeader {
  let length = Math.min(fileSize, 256);
  for (;;) {
    const bytes = readAt(fd, 0, length);
    if (bytes.includes(0x0a) || length >= fileSize) return decodeDboxFileHeader(bytes, { path: filePath });
    length = Math.min(fileSize, length * 4);
  }
}

/** The file a DboxMessageReader holds open. */
export interface OpenDboxFile {
  readonly path: string;
  readonly fd: number;
  /** Its size when last looked at: raised by fstat when a read starts past it, lowered by a read that finds the end first. */
  size: number;
  readonly headerSize: number;
  readonly msgHeaderSize: number;
}

/** @returns whether `f` is larger now than `f.size`, which it then becomes. */
function grew(f: OpenDboxFile): boolean {
  const size = fs.fstatSync(f.fd).size;
  if (size <= f.size) return false;
  f.size = size;
  return true;
}

/**
 * The one buffer a transient read fills (DboxMessageReader.readBody's
 * `window`): each body read through it is a view of it, valid until the next
 * read through the same window. A fetch that is done with each body before it
 * asks for the next (the CLI copies it into its output buffer) then touches
 * one 256 KiB buffer instead of fresh memory for everything it read: on these
 * VMs a page touched for the first time costs ~15 µs, and a 20k fetch touched
 * ~33 MiB of read-ahead windows. A message larger than the window is read
 * into a buffer of its own (the window keeps its size: one large attachment
 * does not pin its size for the rest of a fetch). Owned by one fetch, not by
 * the reader: two fetches in turn on one mailbox never overwrite each other's
 * body.
 */
export class TransientReadWindow {
  /** READ_AHEAD_BYTES, allocated on first use. */
  buffer: Uint8Array = new Uint8Array(0);
  /** What the window holds: `length` bytes from `start` of `file` (that open of it), read for `key`. */
  file: OpenDboxFile | undefined;
  key: object | undefined;
  start = 0;
  length = 0;
  /** Where the last read through it ended: a read starting there is sequential and reads ahead. */
  lastEnd = -1;
}

/**
 * Reads messages out of dbox files, keeping the last file open with its
 * header decoded: an mdbox mailbox's consecutive UIDs mostly share an m.N
 * file, so a fetch of all of them opens each file once, and with the map's
 * record size each message is one pread (20,000 messages: ~3 syscalls each
 * instead of 6). The file grows while open (appends), and may be cut (a
 * save's rollback): a read that comes back short lowers the size it holds,
 * one that needs bytes past it looks at the file's size again. A file
 * replaced under the same name is seen through `forget()`, which callers
 * use when what they read disagrees with the map.
 *
 * When a read starts where the previous one ended (a fetch walking a file's
 * messages in order), the reader reads ahead 256 KiB and serves the next
 * messages from memory: one syscall per ~100 messages instead of one each.
 * Messages are views of the window, which is never refilled (a new one each
 * time). Copying them out of one reused window instead measured slower
 * (fetch of 20,000 messages: CPU 182 -> 214 ms): the copies are fresh
 * memory too until a GC frees them, and cost a malloc and a memcpy each. A
 * caller that is done with each body before the next read passes a
 * TransientReadWindow instead: refilled in place, no memory per message.
 * The read-ahead belongs to the `readAheadKey` the caller gives (mdbox:
 * its map state): committed bytes of an m.N never change, but bytes past
 * them may be an append still in progress, which a rollback truncates and a
 * later append rewrites; a message there can only be known from a newer
 * map state, whose key drops the old read-ahead.
 */
export class DboxMessageReader {
  private file: OpenDboxFile | undefined;
  /** The read-ahead window: `length` bytes of `path` from `start`, read for `key`. */
  private ahead: { key: object; path: string; start: number; length: number; buffer: Uint8Array } | undefined;
  /** Where the last read ended, in `lastPath`: the next read starting there is sequential. */
  private lastEnd = -1;
  private lastPath = "";
  /** What the last readRecord found, in one object rather than one per message (see RecordFound). */
  private readonly found: RecordFound = { at: 0, limit: 0, bodySize: 0, end: -1 };

  /**
   * Reads the message whose header is at `offset` (an mdbox map record's
   * offset, or the header size for a u.N file). `sizeHint` (the map's record
   * size) is how much to read at once; without it, or when it falls short,
   * the read grows until the metadata's end line.
   * `readAheadKey`: allows reading ahead (see the class comment).
   * @returns the message; its body is a view that nothing writes to again
   *   (of its own read, or of a read-ahead window that is never refilled).
   * @throws MailCorruptedError when `offset` is not inside the messages or the
   *   message there is malformed; fs errors as is.
   */
  read(filePath: string, offset: number, sizeHint?: number, readAheadKey?: object): DboxMessage {
    const bytes = this.readRecord(filePath, offset, sizeHint, readAheadKey);
    const found = this.found;
    const record = bytes.subarray(found.at, found.end >= 0 ? found.end : found.limit);
    return decodeDboxMessageAt(record, 0, this.file!.msgHeaderSize, { path: filePath, baseOffset: offset });
  }

  /**
   * As read(), without decoding the metadata block (a body fetch needs only
   * the body; Dovecot reads no metadata for it either). The block's framing
   * is still found, for `size`. With `window`, the body is a view of it (see
   * TransientReadWindow): valid until the next read through that window.
   * @returns the body and the record's size (header, body and metadata).
   */
  readBody(filePath: string, offset: number, sizeHint?: number, readAheadKey?: object, window?: TransientReadWindow): { body: Uint8Array; size: number } {
    const bytes = this.readRecord(filePath, offset, sizeHint, readAheadKey, window);
    const m = this.file!.msgHeaderSize;
    const found = this.found;
    if (found.end < 0) {
      // A bad header, a body past the file's end or no end line before it: the full decode says what is wrong, or what it makes of it.
      const message = decodeDboxMessageAt(bytes.subarray(found.at, found.limit), 0, m, { path: filePath, baseOffset: offset });
      return { body: message.body, size: message.size };
    }
    // The header was checked and the end line found by readRecord: not again; one view, of the body.
    const bodyStart = found.at + m;
    return { body: bytes.subarray(bodyStart, bodyStart + found.bodySize), size: found.end - found.at };
  }

  /**
   * Reads the message record at `offset`, up to its metadata's end line when
   * the file has it (see read()).
   * @returns the bytes it is in; `found` says where.
   */
  private readRecord(filePath: string, offset: number, sizeHint: number | undefined, readAheadKey: object | undefined, window?: TransientReadWindow): Uint8Array {
    const f = this.fileFor(filePath, offset);
    if (!Number.isSafeInteger(offset) || offset < f.headerSize || offset >= f.size) {
      throw new MailCorruptedError(`message offset ${offset} is outside the messages (${f.headerSize}..${f.size})`, { path: filePath, offset });
    }
    const bytes = this.readRecordUpToSize(f, offset, sizeHint, readAheadKey, window);
    // Not all there by the size we had: the file may have grown since (appended to after it was opened,
    // or after a cut seen here). One look before the decode calls the record broken; one, so it ends.
    if (this.found.end >= 0 || !grew(f)) return bytes;
    return this.readRecordUpToSize(f, offset, sizeHint, undefined, undefined);
  }

  /** readRecord's reads, none past `f.size`, which a short read lowers (the file was cut). */
  private readRecordUpToSize(f: OpenDboxFile, offset: number, sizeHint: number | undefined, readAheadKey: object | undefined, window: TransientReadWindow | undefined): Uint8Array {
    const m = f.msgHeaderSize;
    const found = this.found;
    found.end = -1;
    // Sizes come from the file (and a hint from the map): never read more than what is there.
    let length = Math.min(f.size - offset, sizeHint !== undefined && sizeHint > m ? sizeHint : m + READ_CHUNK);
    for (let first = true; ; first = false) {
      const bytes = !first ? this.readOwn(f.fd, offset, length) : window !== undefined ? this.readThrough(window, f, offset, length, readAheadKey) : this.readFirst(f, offset, length, readAheadKey);
      const at = found.at;
      const got = found.limit - at;
      // Short: the file was cut since its size was taken (a rollback, or by hand). It ends here now, so the
      // checks below stop at the cut instead of asking again for the bytes up to the old size, forever.
      if (got < length) f.size = offset + got;
      if (got < m) return bytes; // the decode throws: truncated header
      const bodySize = decodeDboxMessageHeader(bytes, at, m, { path: f.path, offset });
      if (bodySize > f.size - offset - m) return bytes; // the decode throws: past EOF
      const end = got > m + bodySize ? findDboxMetadataEnd(bytes, at + m + bodySize, found.limit) : undefined;
      if (end !== undefined) {
        found.bodySize = bodySize;
        found.end = end;
        return bytes;
      }
      if (offset + got >= f.size) return bytes;
      length = Math.min(f.size - offset, Math.max(length + READ_CHUNK, m + bodySize + READ_CHUNK));
    }
  }

  /** Closes the open file: the next read opens the path again. */
  forget(): void {
    if (this.file) fs.closeSync(this.file.fd);
    this.file = undefined;
    this.ahead = undefined;
    this.lastEnd = -1;
  }

  /** A read into a buffer of its own (`found` says where). */
  private readOwn(fd: number, offset: number, length: number): Uint8Array {
    const bytes = readAt(fd, offset, length);
    this.found.at = 0;
    this.found.limit = bytes.length;
    return bytes;
  }

  /** A message's first read: from the read-ahead window when sequential, else one pread into a buffer of its own (`found` says where). */
  private readFirst(f: OpenDboxFile, offset: number, length: number, key: object | undefined): Uint8Array {
    const sequential = key !== undefined && offset === this.lastEnd && f.path === this.lastPath;
    this.lastEnd = offset + length;
    this.lastPath = f.path;
    if (!sequential || length > READ_AHEAD_BYTES / 2) return this.readOwn(f.fd, offset, length);
    let a = this.ahead;
    if (a === undefined || a.key !== key || a.path !== f.path || offset < a.start || offset + length > a.start + a.length) {
      // A new window each time, never refilled: the messages served from it are views of it, not copies.
      // Not zeroed (every byte served is read first), and a plain Uint8Array: its views cost less to make than a Buffer's.
      const buffer = new Uint8Array(Buffer.allocUnsafeSlow(READ_AHEAD_BYTES).buffer, 0, READ_AHEAD_BYTES);
      const got = readFullyAt(f.fd, buffer, offset, Math.min(READ_AHEAD_BYTES, f.size - offset));
      a = this.ahead = { key, path: f.path, start: offset, length: got, buffer };
      if (got < length) return this.readOwn(f.fd, offset, length);
    }
    // The record's place in the window: no view of it, only of what is handed out.
    this.found.at = offset - a.start;
    this.found.limit = offset - a.start + length;
    return a.buffer;
  }

  /**
   * A message's first read through a fetch's own window (`found` says
   * where): served from it when it holds the bytes, else the window is
   * refilled in place, from `offset` on, with 256 KiB read ahead when the read
   * follows the last one and may (`key`, as readFirst). A read larger than
   * the window gets a buffer of its own.
   */
  private readThrough(w: TransientReadWindow, f: OpenDboxFile, offset: number, length: number, key: object | undefined): Uint8Array {
    if (length > READ_AHEAD_BYTES) return this.readOwn(f.fd, offset, length);
    const holds = key !== undefined && w.key === key && w.file === f && offset >= w.start && offset + length <= w.start + w.length;
    if (!holds) {
      const sequential = key !== undefined && w.key === key && w.file === f && offset === w.lastEnd;
      const want = Math.min(sequential ? READ_AHEAD_BYTES : length, f.size - offset);
      if (w.buffer.length === 0) w.buffer = new Uint8Array(Buffer.allocUnsafeSlow(READ_AHEAD_BYTES).buffer, 0, READ_AHEAD_BYTES);
      w.length = readFullyAt(f.fd, w.buffer, offset, want);
      w.start = offset;
      w.file = f;
      // Bytes read without a key may be an append in progress: never served again.
      w.key = key;
    }
    w.lastEnd = offset + length;
    this.found.at = offset - w.start;
    // Short when the file was cut: what is there.
    this.found.limit = Math.min(offset + length, w.start + w.length) - w.start;
    return w.buffer;
  }

  private fileFor(filePath: string, offset: number) {
    if (this.file?.path !== filePath) {
      this.forget();
      const fd = fs.openSync(filePath, "r");
      try {
        const size = fs.fstatSync(fd).size;
        const { header, headerSize } = readFileHeader(fd, size, filePath);
        this.file = { path: filePath, fd, size, headerSize, msgHeaderSize: header.msgHeaderSize };
      } catch (err) {
        fs.closeSync(fd);
        throw err;
      }
    } else if (offset >= this.file.size) {
      grew(this.file); // appended to since
    }
    return this.file;
  }
}

/** One message, with a reader of its own (see DboxMessageReader.read). */
export async function readDboxMessageAt(filePath: string, offset: number): Promise<DboxMessage> {
  const reader = new DboxMessageReader();
  try {
    return reader.read(filePath, offset);
  } finally {
    reader.forget();
  }
}

/** Where an appended message landed: the values of its mdbox map record. */
export interface MdboxAppendRecord {
  readonly offset: number;
  readonly size: number;
}

export type MdboxAppendResult =
  | {
      readonly status: "appended";
      /** One record per appended message, in order; may be fewer than given (rotation). */
      readonly records: MdboxAppendRecord[];
      /** File size after the append. */
      readonly fileSizeBytes: number;
    }
  /** missing: no such file (or it was unlinked or replaced between our open and our lock); locked: another process holds its flock; full: rotation
   * says no; size-mismatch: the file does not end where the map says;
   * not-appendable: msg header size is not 30. */
  | { readonly status: "missing" | "locked" | "full" | "size-mismatch" | "not-appendable" };

export interface MdboxAppendOptions {
  /** The end of the file's last message per the map (offset + size); checked when given. */
  readonly expectedSizeBytes?: number;
  /** mdbox_rotate_size (default 10 MiB). */
  readonly rotateSizeBytes?: number;
  /** True when the caller's transaction already appended to this file (changes the rotation rule). */
  readonly appendedInTransaction?: boolean;
  /** fdatasync after writing (default true). */
  readonly sync?: boolean;
}

/**
 * Appends messages to an existing m.N file under Dovecot's flock, taking as
 * many of `messages` (a prefix) as the rotation rule lets in; the caller
 * puts the rest in another file. The file's header must say version 2 and
 * M=30, as Dovecot requires for appending. A failed write is truncated away.
 * @returns the outcome; for "appended", the map offset and size of each message.
 * @throws MailCorruptedError when the file header is malformed; fs errors as is.
 */
export async function appendMdboxMessages(
  filePath: string,
  messages: readonly DboxMessageInput[],
  opts: MdboxAppendOptions = {},
): Promise<MdboxAppendResult> {
  let fh: FileHandle;
  try {
    fh = await fsp.open(filePath, "r+");
  } catch (err) {
    if (isErrno(err, "ENOENT")) return { status: "missing" };
    throw err;
  }
  try {
    // Closing fh at the end releases the flock (its only descriptor).
    const st = flockStillAt(fh.fd, filePath);
    if (st === "locked") return { status: "locked" };
    // Unlinked (purged) between our open and our lock: appending there would lose the messages.
    if (st === "gone") return { status: "missing" };
    const fileSize = st.sizeBytes;
    const { header } = readFileHeader(fh.fd, fileSize, filePath);
    if (header.msgHeaderSize !== DBOX_MSG_HEADER_SIZE) return { status: "not-appendable" };
    if (opts.expectedSizeBytes !== undefined && opts.expectedSizeBytes !== fileSize) return { status: "size-mismatch" };

    let size = fileSize;
    let count = 0;
    for (const message of messages) {
      const appendedInTransaction = count > 0 || (opts.appendedInTransaction ?? false);
      if (!mdboxFileHasRoom({ fileSizeBytes: size, mailSizeBytes: message.body.length, rotateSizeBytes: opts.rotateSizeBytes, appendedInTransaction })) break;
      size += dboxMessageSize(message.body.length, message.metadata);
      count++;
    }
    if (count === 0) return { status: "full" };

    const { bytes, records } = encodeDboxMessages(messages.slice(0, count));
    try {
      await fh.write(bytes, 0, bytes.length, fileSize);
      if (opts.sync ?? true) await fh.datasync();
    } catch (err) {
      await cleanupAfter(err, () => fh.truncate(fileSize));
      throw err;
    }
    return {
      status: "appended",
      records: records.map((r) => ({ offset: fileSize + r.offset, size: r.size })),
      fileSizeBytes: fileSize + bytes.length,
    };
  } finally {
    await fh.close();
  }
}

/** A u.N or m.N file found in a directory. */
export interface DboxFileEntry {
  readonly name: string;
  /** The uid (u.N) or file_id (m.N). */
  readonly id: number;
}

/**
 * Lists the sdbox (`u.<uid>`) or mdbox (`m.<file_id>`) files in `dir`, skipping
 * temp files and anything else. Ids are decimal u32 values above 0.
 * @returns the entries sorted by id.
 * @throws MailstoreError NOT_FOUND when `dir` does not exist; other fs errors as is.
 */
export async function listDboxFiles(dir: string, kind: "sdbox" | "mdbox"): Promise<DboxFileEntry[]> {
  const prefix = kind === "sdbox" ? SDBOX_FILE_PREFIX : MDBOX_FILE_PREFIX;
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if (isErrno(err, "ENOENT")) throw new MailstoreError("NOT_FOUND", "dbox directory does not exist", { path: dir });
    throw err;
  }
  const entries: DboxFileEntry[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const digits = name.slice(prefix.length);
    if (!/^[0-9]{1,10}$/.test(digits)) continue;
    const id = Number(digits);
    if (id > 0 && id <= 0xffffffff) entries.push({ name, id });
  }
  return entries.sort((a, b) => a.id - b.id);
}
