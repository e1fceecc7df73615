import * as fs from "node:fs";
import { assert } from "../shared/errors.js";
import { readFullyAt } from "../shared/read-at.js";

/**
 * One descriptor per log file (inode) and process, shared by every reader and
 * writer in the process. fcntl locks are dropped when the process closes any
 * descriptor of the locked file, so a reader that opened and closed its own
 * descriptor would silently unlock a writer: everyone reads through this one.
 */
export interface SharedLogFile {
  readonly path: string;
  readonly fd: number;
  readonly ino: number;
  readonly dev: number;
  readonly writable: boolean;
  refs: number;
  /** Serialises in-process writers, which fcntl cannot tell apart. */
  mutex: Promise<void>;
  /**
   * Extra descriptors of this inode opened by a lost stat/open race. Closing
   * one would drop a lock held through `fd`, so they stay open until the
   * last reference goes, when `fd` is closed too.
   */
  spareFds: number[];
}

/** A read from offset 0 of at most this many bytes is a header peek, not a read of the log's records. */
const HEADER_PEEK_BYTES = 64;

const openFiles = new Map<string, SharedLogFile>();

function keyOf(st: { dev: number; ino: number }): string {
  return `${st.dev}:${st.ino}`;
}

/** Opens (or shares) the file at `path`. Throws ENOENT like fs does. */
export function acquireLogFile(path: string): SharedLogFile {
  const st = fs.statSync(path);
  const known = openFiles.get(keyOf(st));
  if (known) {
    known.refs++;
    return known;
  }
  let fd: number;
  let writable = true;
  try {
    fd = fs.openSync(path, fs.constants.O_RDWR);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EACCES" && code !== "EROFS" && code !== "EPERM") throw err;
    fd = fs.openSync(path, fs.constants.O_RDONLY);
    writable = false;
  }
  const fst = fs.fstatSync(fd);
  const raced = openFiles.get(keyOf(fst));
  if (raced) {
    // The path was replaced between stat and open (a rotation) by a file we
    // already hold, perhaps locked: closing this second descriptor now would
    // release that lock, so it is kept until the file's last release.
    raced.spareFds.push(fd);
    raced.refs++;
    return raced;
  }
  const file: SharedLogFile = { path, fd, ino: fst.ino, dev: fst.dev, writable, refs: 1, mutex: Promise.resolve(), spareFds: [] };
  openFiles.set(keyOf(fst), file);
  return file;
}

/**
 * Drops one reference; the last one closes the descriptor. Whoever holds the
 * file's lock must hold a reference for as long, so that the descriptor (and
 * with it the lock) is never closed under it, and its number never reused by
 * another file while someone still uses it.
 */
export function releaseLogFile(file: SharedLogFile): void {
  assert(file.refs > 0, `log file ${file.path} released more often than acquired`);
  if (--file.refs > 0) return;
  openFiles.delete(keyOf(file));
  for (const spare of file.spareFds.splice(0)) fs.closeSync(spare);
  fs.closeSync(file.fd);
}

/** Takes another reference to a file already held. */
export function retainLogFile(file: SharedLogFile): SharedLogFile {
  assert(file.refs > 0, `log file ${file.path} retained after its last release`);
  file.refs++;
  return file;
}

/**
 * Waits until every earlier in-process holder of `file`'s mutex is done.
 * @returns the function that releases it (exactly once).
 */
export async function acquireFileMutex(file: SharedLogFile): Promise<() => void> {
  const before = file.mutex;
  let release!: () => void;
  file.mutex = new Promise<void>((resolve) => (release = resolve));
  await before;
  return release;
}

/** Runs `fn` after every earlier in-process holder of `file` has finished. */
export async function withFileMutex<T>(file: SharedLogFile, fn: () => Promise<T>): Promise<T> {
  const release = await acquireFileMutex(file);
  try {
    return await fn();
  } finally {
    release();
  }
}

/** Reads the whole file through the shared descriptor. */
export function readWhole(file: SharedLogFile): Uint8Array {
  const size = fs.fstatSync(file.fd).size;
  return readRange(file, 0, size);
}

/** Reads of log file contents this process made (for the benchmarks' "log reads per command"). */
let logReads = 0;

/** @returns how many times this process has read log file contents (header-only reads excluded). */
export function logReadCount(): number {
  return logReads;
}

/** Reads [start, end) through the shared descriptor (short at EOF). */
export function readRange(file: SharedLogFile, start: number, end: number): Uint8Array {
  if (start > 0 || end > HEADER_PEEK_BYTES) logReads++;
  const out = new Uint8Array(Math.max(0, end - start));
  let done = 0;
  while (done < out.length) {
    const n = fs.readSync(file.fd, out, done, out.length - done, start + done);
    if (n === 0) break;
    done += n;
  }
  return done === out.length ? out : out.subarray(0, done);
}

/** Pages of LazyLogBytes: the unit a process pays a fault for when it first touches memory. */
const PAGE_SHIFT = 12;
const PAGE_SIZE = 1 << PAGE_SHIFT;
/** The most pages one LazyLogBytes read takes when reads keep following each other. */
const MAX_RUN_PAGES = 64;

/**
 * A log file's bytes read on demand, for a scan that looks at a small part
 * of a large file: the log before a checkpoint, which a load skims for its
 * running modseq (record headers, and the payloads of the few record types
 * whose modseq depends on them). `bytes` is as long as the file was when
 * this was made, and zero wherever nothing was asked for; fill(start, end)
 * reads [start, end) from the file. Why: a fresh process pays a page fault
 * for each page of memory it first touches, and the zeroed buffer costs
 * nothing until touched; reading a whole 801 KB log (a 20k import's) cost a
 * short command ~2.3 ms of system time on the bench machine, the copy itself
 * ~0.05 ms. Only for bytes that do not change while read: a transaction
 * below a checkpoint's log position is complete and never rewritten. The
 * tail past the last complete transaction may be cut (a writer cutting a
 * crashed writer's torn tail) and written again: read it in one fill() and
 * scan only `readBytes`, which ends where a read came up short, as a whole
 * read would have: zeros past a file that shrank are not the file's.
 * Counts as one read of the log (logReadCount), as the whole read it stands for.
 */
export class LazyLogBytes {
  readonly bytes: Uint8Array;
  /** One flag per page: read already. */
  private readonly loaded: Uint8Array;
  /** Pages the next read takes at least: doubles while reads follow each other (a log of small records). */
  private runPages = 1;
  private lastEndPage = -1;
  /** Where a read found the file ending before `bytes` does (it shrank since): nothing from here on is the file's. */
  private shortAt: number;

  constructor(private readonly file: SharedLogFile, sizeBytes: number) {
    this.bytes = new Uint8Array(sizeBytes);
    this.shortAt = sizeBytes;
    this.loaded = new Uint8Array((sizeBytes >>> PAGE_SHIFT) + 1);
    logReads++;
  }

  /** Makes bytes[start, end) the file's (clamped to the size it had). */
  fill(start: number, end: number): void {
    end = Math.min(end, this.bytes.length);
    if (start >= end) return;
    const lastPage = (end - 1) >>> PAGE_SHIFT;
    for (let page = start >>> PAGE_SHIFT; page <= lastPage; page++) {
      if (this.loaded[page] === 1) continue;
      this.runPages = page === this.lastEndPage ? Math.min(this.runPages * 2, MAX_RUN_PAGES) : 1;
      let stop = Math.max(lastPage + 1, page + this.runPages);
      stop = Math.min(stop, this.loaded.length);
      for (let p = page + 1; p < stop; p++) {
        if (this.loaded[p] === 1) {
          stop = p;
          break;
        }
      }
      this.readPages(page, stop);
      this.lastEndPage = stop;
      page = stop - 1;
    }
  }

  /** `bytes` up to where the file was found to end, when a read came up short. */
  get readBytes(): Uint8Array {
    return this.shortAt < this.bytes.length ? this.bytes.subarray(0, this.shortAt) : this.bytes;
  }

  private readPages(from: number, stop: number): void {
    // Multiplied, not shifted: page numbers of a file past 2 GiB overflow a 32-bit shift.
    const start = from * PAGE_SIZE;
    const end = Math.min(stop * PAGE_SIZE, this.bytes.length);
    const got = readFullyAt(this.file.fd, this.bytes.subarray(start, end), start, end - start);
    if (start + got < end) this.shortAt = Math.min(this.shortAt, start + got);
    this.loaded.fill(1, from, stop);
  }
}

/** The inode currently at `path`, or undefined when nothing is there. */
export function inodeAt(path: string): { dev: number; ino: number } | undefined {
  try {
    const st = fs.statSync(path);
    return { dev: st.dev, ino: st.ino };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}
