/**
 * Reading and writing dovecot.index on disk (index-file.md §7). This is the
 * index I/O layer (src/index-io) that projections must not do; the byte layout is
 * index-file.ts's job.
 *
 * Writing is never in place: the new file is written to dovecot.index.tmp
 * (O_EXCL, a stale one removed first), synced, then renamed over
 * dovecot.index, so a reader sees the old file or the new one, never a mix.
 * For sdbox/mdbox mailbox indexes Dovecot first keeps the previous file as
 * dovecot.index.backup (a hard link made under a temporary name and renamed
 * into place). The caller must hold the log lock, as Dovecot does.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { encodeIndexHeaderArea, decodeIndexFile, decodeIndexFileLazy } from "../projections/index-file.js";
import { IndexRowsFile, preadAll } from "./index-rows-file.js";
import type { IndexMapState } from "../projections/state.js";
import { IndexCorruptedError } from "../shared/errors.js";
import { newFilePermissionsIn, finishNewFile } from "../shared/file-mode.js";

export interface WriteCheckpointOptions {
  /** Keep the previous file as `<path>.backup` (Dovecot does for sdbox/mdbox mailbox indexes). */
  backup?: boolean;
  /** fdatasync the new file before renaming it (default true; Dovecot's mail_fsync=never skips it). */
  fsync?: boolean;
  /** File mode for the new file (default: the mode of `<path>.log`, else 0o600). */
  mode?: number;
}

function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === code;
}

/**
 * Files from this size on are read lazily when asked (`lazy`): below it,
 * reading the rows with the header costs next to nothing (64 KiB: 2,000
 * mdbox rows).
 */
export const LAZY_MIN_BYTES = 64 * 1024;

/** Bytes read first for the header area (most are under 1 KiB); more when header_size says so. */
const HEAD_PEEK = 8 * 1024;

/**
 * Reads and decodes `indexPath` (e.g. `<dir>/dovecot.index`); undefined when the file does not exist.
 * `lazy`: read the header area only and the records on first use
 * (decodeIndexFileLazy): for an index writer's state, whose recovery from a
 * broken row the writer handles; every other reader reads eagerly.
 */
export function readCheckpoint(indexPath: string, options: { lazy?: boolean } = {}): IndexMapState | undefined {
  let fd: number;
  try {
    // Non-blocking: a FIFO in its place must not hang the open.
    fd = fs.openSync(indexPath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    if (isErrno(err, "ENOENT")) return undefined;
    throw err;
  }
  let bytes: Buffer;
  let kept = false;
  try {
    const st = fs.fstatSync(fd);
    // A device (/dev/zero) would be read forever: only a regular file is an index.
    if (!st.isFile()) throw new IndexCorruptedError("not a regular file", { path: indexPath });
    if (options.lazy && st.size >= LAZY_MIN_BYTES) {
      const state = readLazily(indexPath, fd, st.size);
      if (state !== undefined) {
        kept = true; // the IndexRowsFile closes it
        return state;
      }
    }
    bytes = fs.readFileSync(fd);
  } finally {
    if (!kept) fs.closeSync(fd);
  }
  // The buffer is this read's alone: the records may stay views of it.
  return decodeIndexFile(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), indexPath, { adopt: true });
}

/** The header area of `fd` decoded, its rows left to an IndexRowsFile holding `fd`; undefined when the rows are needed now. */
function readLazily(indexPath: string, fd: number, size: number): IndexMapState | undefined {
  let head = readAt(fd, 0, Math.min(size, HEAD_PEEK));
  const headerSize = head.length >= 8 ? new DataView(head.buffer, head.byteOffset).getUint32(4, true) : 0;
  if (headerSize > head.length && headerSize <= size) head = readAt(fd, 0, headerSize);
  let rows: IndexRowsFile | undefined;
  // Before `rows` exists the decode reads a part itself (the last row's uid, checked at once).
  const readPart = (offset: number, length: number) => (rows ? rows.readPart(offset, length) : preadAll(fd, indexPath, offset, length));
  const state = decodeIndexFileLazy(head, size, indexPath, () => rows!.read(), readPart, () => rows!.close());
  if (state === undefined) return undefined;
  // Checked by the decode: the records are where the header says, inside the file.
  const view = new DataView(head.buffer, head.byteOffset);
  rows = new IndexRowsFile(indexPath, fd, view.getUint32(4, true), view.getUint32(32, true) * view.getUint32(8, true));
  return state;
}

/** `length` bytes at `offset` of `fd` (fewer at the end of the file). */
function readAt(fd: number, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, out, done, length - done, offset + done);
    if (n === 0) break;
    done += n;
  }
  return out.subarray(0, done);
}

/** Writes `state` as `indexPath` the way Dovecot replaces dovecot.index. */
export function writeCheckpoint(indexPath: string, state: IndexMapState, opts: WriteCheckpointOptions = {}): void {
  const head = encodeIndexHeaderArea(state);
  const tmpPath = `${indexPath}.tmp`;
  const mode = opts.mode ?? modeOf(`${indexPath}.log`) ?? 0o600;
  try {
    fs.unlinkSync(tmpPath);
  } catch (err) {
    if (!isErrno(err, "ENOENT")) throw err;
  }
  // Statted before the creation: the directory the new file must really be in (finishNewFile as root).
  const perm = newFilePermissionsIn(path.dirname(indexPath));
  const fd = fs.openSync(tmpPath, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode);
  try {
    finishNewFile(fd, perm, tmpPath);
    try {
      writeAll(fd, head);
      // The records as the record store holds them, chunk by chunk: no copy of the whole index.
      state.records.forEachChunk((rows) => writeAll(fd, rows));
      if (opts.fsync ?? true) fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (opts.backup) keepBackup(indexPath);
    fs.renameSync(tmpPath, indexPath);
  } catch (err) {
    try {
      fs.unlinkSync(tmpPath);
    } catch (cleanupErr) {
      // Best-effort cleanup while the write's error is thrown: that error is the one to
      // report, and the next write removes a leftover tmp file.
      void cleanupErr;
    }
    throw err;
  }
}

/** Writes all of `bytes` at the file position of `fd`. */
function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
}

/** Hard-links the current file to `<path>.backup.tmp` and renames that to `<path>.backup`. */
function keepBackup(indexPath: string): void {
  const backupPath = `${indexPath}.backup`;
  const tmpBackup = `${backupPath}.tmp`;
  const link = (): void => fs.linkSync(indexPath, tmpBackup);
  try {
    link();
  } catch (err) {
    if (isErrno(err, "ENOENT")) return; // no previous dovecot.index: nothing to keep
    if (!isErrno(err, "EEXIST")) throw err;
    fs.unlinkSync(tmpBackup);
    link();
  }
  fs.renameSync(tmpBackup, backupPath);
}

function modeOf(path: string): number | undefined {
  try {
    return fs.statSync(path).mode & 0o777;
  } catch (err) {
    if (isErrno(err, "ENOENT")) return undefined; // no log to take the mode from: the caller's default
    throw err;
  }
}
