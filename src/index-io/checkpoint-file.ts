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
import { encodeIndexHeaderArea, decodeIndexFile, decodeIndexFileRows, indexHeaderSizeOf } from "../projections/index-file.js";
import type { IndexHeader } from "../projections/base-header.js";
import { readFullyAt } from "../shared/read-at.js";
import { IndexRowsFile } from "./index-rows-file.js";
import type { IndexMapState } from "../projections/state.js";
import { assert, IndexCorruptedError } from "../shared/errors.js";
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
 * `lazyMinBytes`: a file smaller than this is read whole even when asked to
 * be read lazily (a few leaves cost less read at once than an open
 * descriptor). Settable for tests comparing both ways on the same files.
 */
export const checkpointReading = { lazyMinBytes: 64 * 1024 };
/** What a lazy read reads first: the header area of any usual dovecot.index (its extensions take a few hundred bytes). */
const HEAD_READ_BYTES = 4096;

export interface ReadCheckpointOptions {
  /**
   * Read the records when first touched (index-rows.ts), from the file as
   * it was opened: the descriptor stays open until every record has been
   * read or the state is collected, so a dovecot.index renamed over it
   * meanwhile is not mixed in. A record's corruption then throws
   * IndexCorruptedError when it is read, not here.
   */
  lazy?: boolean;
  /** Files of fewer bytes are read whole even when `lazy` (default checkpointReading.lazyMinBytes). */
  lazyMinBytes?: number;
}

/** Closes the descriptor of a lazily read dovecot.index whose records nobody can read any more. */
const unreadFiles = new FinalizationRegistry<number>((fd) => fs.closeSync(fd));

/** Reads and decodes `indexPath` (e.g. `<dir>/dovecot.index`); undefined when the file does not exist. */
export function readCheckpoint(indexPath: string, opts: ReadCheckpointOptions = {}): IndexMapState | undefined {
  let fd: number;
  try {
    // Non-blocking: a FIFO in its place must not hang the open.
    fd = fs.openSync(indexPath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    if (isErrno(err, "ENOENT")) return undefined;
    throw err;
  }
  let bytes: Buffer;
  let keepOpen = false;
  try {
    const st = fs.fstatSync(fd);
    // A device (/dev/zero) would be read forever: only a regular file is an index.
    if (!st.isFile()) throw new IndexCorruptedError("not a regular file", { path: indexPath });
    if (opts.lazy === true && st.size >= (opts.lazyMinBytes ?? checkpointReading.lazyMinBytes)) {
      // The descriptor is readLazily's from here: it closes it on failure or once every record is read.
      keepOpen = true;
      return readLazily(fd, st.size, indexPath);
    }
    bytes = fs.readFileSync(fd);
  } finally {
    if (!keepOpen) fs.closeSync(fd);
  }
  // The buffer is this read's alone: the records may stay views of it.
  return decodeIndexFile(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), indexPath, { adopt: true });
}

/**
 * The header area of the file open as `fd` now, its records when first
 * read. Every read is a pread of this descriptor: the rows come from the
 * file that was opened, whatever is renamed over its name later (Dovecot
 * and this engine replace dovecot.index by rename, never in place).
 */
function readLazily(fd: number, size: number, indexPath: string): IndexMapState {
  let head = new Uint8Array(Math.min(size, HEAD_READ_BYTES));
  readFullyAt(fd, head, 0, head.length);
  const headerSize = indexHeaderSizeOf(head);
  if (headerSize > head.length && headerSize <= size) {
    head = new Uint8Array(headerSize);
    readFullyAt(fd, head, 0, headerSize);
  }
  // The descriptor lives while a leaf may still read it: `file` is held by the reader, the reader by the unread leaves.
  const file = { fd };
  const release = (): void => {
    if (file.fd < 0) return;
    unreadFiles.unregister(file);
    fs.closeSync(file.fd);
    file.fd = -1;
  };
  const openFd = (): number => {
    assert(file.fd >= 0, `${indexPath}: records read after the file was closed`);
    return file.fd;
  };
  const openRows = (hdr: IndexHeader): IndexRowsFile => new IndexRowsFile(openFd, indexPath, hdr.headerSize, hdr.recordSize, hdr.messagesCount);
  unreadFiles.register(file, fd, file);
  try {
    return decodeIndexFileRows(head, size, indexPath, openRows, { onAllRead: release });
  } catch (err) {
    release();
    throw err;
  }
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
  const fd = fs.openSync(tmpPath, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode);
  try {
    finishNewFile(fd, newFilePermissionsIn(path.dirname(indexPath)), tmpPath);
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
