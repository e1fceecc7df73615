import { LogChainError, LogPositionLostError } from "../shared/errors.js";
import * as fs from "node:fs";
import { scanTransactions } from "./file.js";
import { decodeLogHeader } from "./header.js";
import { acquireLogFile, LazyLogBytes, readRange, releaseLogFile, type SharedLogFile } from "./shared-file.js";
import { LOG_HEADER_MIN_SIZE, LOG_HEADER_SIZE, type LogFileHeader, type LogPosition, type LogTransaction } from "./types.js";

/** What a read of the log files returns. */
export interface LogReadResult {
  /** Complete transactions from the requested position to the head's end. */
  transactions: LogTransaction[];
  /** Position just past the last complete transaction of the head log. */
  end: LogPosition;
  /** The running modseq at `end`. */
  endModseq: bigint;
  /** The running modseq where the returned transactions start. */
  startModseq: bigint;
  /** Headers of the files read, oldest first. */
  headers: LogFileHeader[];
  /**
   * True when the transactions start from an empty state: the first file read
   * has prev_file_seq 0 (a fresh or reset log), so replaying them from an
   * empty state gives the full state. Always true when a file on the way
   * resets the state.
   */
  fromScratch: boolean;
}

export const HEAD_SUFFIX = ".log";
export const ROTATED_SUFFIX = ".log.2";

/**
 * Reads the log files of `prefix` (e.g. `<dir>/dovecot.index`): `.log.2` then
 * `.log`, chained by prev_file_seq/prev_file_offset, from `from` (a
 * transaction start or end) or, without it, from the oldest file's start.
 * Throws LogPositionLostError when `from` is not in the files any more,
 * LogChainError when the files do not chain, LogCorruptedError/LogHeaderError
 * for bad bytes.
 */
export function readLog(prefix: string, from?: LogPosition): LogReadResult {
  const transactions: LogTransaction[] = [];
  const summary = streamLog(prefix, from, {
    onTransaction: (tx) => void transactions.push(tx),
    onReset: () => void (transactions.length = 0),
  });
  return { transactions, ...summary };
}

export interface LogStreamHandlers {
  onTransaction: (tx: LogTransaction) => void;
  /** A later file starts from an empty state (prev_file_seq 0): what came before no longer counts. */
  onReset?: () => void;
  /** Before each file's transactions: its header and size. */
  onFile?: (header: LogFileHeader, sizeBytes: number) => void;
  /**
   * Hand the same transaction object (entries and flag/keyword/ext-rec update
   * records included) to every onTransaction call, overwritten by the next
   * one: for a consumer that keeps nothing of it, such as a replay (see
   * scan-reuse.ts). Those records may be raw (RawFlagUpdate,
   * RawKeywordUpdate, an ext-rec's `packed`: left in the log's bytes); a
   * consumer that keeps a transaction copies it with detachTransaction
   * (detach.ts), which gives what a plain scan decodes.
   */
  reuse?: boolean;
}

/** What streamLog reports besides the transactions themselves. */
export type LogStreamSummary = Omit<LogReadResult, "transactions">;

/**
 * readLog without keeping the transactions: each is handed to
 * `onTransaction` as it is decoded (a replay folds and drops it), so memory
 * stays bounded by the file sizes.
 */
export function streamLog(prefix: string, from: LogPosition | undefined, handlers: LogStreamHandlers): LogStreamSummary {
  const files = chainFiles(prefix);
  try {
    return streamFiles(prefix, files, from, handlers);
  } finally {
    for (const f of files) releaseLogFile(f.file);
  }
}

function streamFiles(prefix: string, files: ChainFile[], from: LogPosition | undefined, handlers: LogStreamHandlers): LogStreamSummary {
  const { onTransaction, onReset = () => undefined, onFile = () => undefined } = handlers;
  let startIndex = 0;
  if (from !== undefined) {
    startIndex = files.findIndex((f) => f.header.fileSeq === from.fileSeq);
    if (startIndex < 0) {
      throw new LogPositionLostError(`log file_seq ${from.fileSeq} is no longer available`, {
        path: prefix + HEAD_SUFFIX, fileSeq: from.fileSeq, offset: from.offset,
      });
    }
  }
  let fromScratch = from === undefined && files[0].header.prevFileSeq === 0;
  let startModseq = files[startIndex].header.initialModseq;
  let end: LogPosition = { fileSeq: 0, offset: 0 };
  let endModseq = 0n;
  for (let i = startIndex; i < files.length; i++) {
    const file = files[i];
    if (i > startIndex && file.header.prevFileSeq === 0) {
      // An index reset: whatever came before no longer counts.
      onReset();
      fromScratch = true;
      startModseq = file.header.initialModseq;
    }
    onFile(file.header, file.lazy.bytes.length);
    const isStart = i === startIndex;
    // A position before the first record (a state that has seen no record of this file yet) is its start.
    const minOffset = isStart && from ? Math.max(from.offset, file.header.hdrSize) : 0;
    let found = !isStart || !from || minOffset === file.header.hdrSize;
    // What lies before `from` is skimmed: only its modseq and boundaries matter, read
    // piecemeal (complete transactions, never rewritten). What is decoded is read at once,
    // as one snapshot: past the last complete transaction, a torn tail may be cut and rewritten.
    file.lazy.fill(minOffset, file.lazy.bytes.length);
    const scan = scanTransactions(file.lazy.readBytes, file.header, file.path, (tx) => {
      if (tx.position.offset < minOffset) {
        if (tx.end.offset <= minOffset) startModseq = tx.modseq;
        if (tx.end.offset === minOffset) found = true;
        return;
      }
      if (!found && tx.position.offset !== minOffset) throw notABoundary(file.path, from!);
      found = true;
      onTransaction(tx);
    }, undefined, { reuse: handlers.reuse, skimBefore: minOffset, fill: (start, end) => file.lazy.fill(start, end) });
    if (!found) throw notABoundary(file.path, from!);
    const next = files[i + 1];
    if (next && scan.syncOffset !== next.header.prevFileOffset) {
      throw new LogChainError(
        `${ROTATED_SUFFIX} ends at ${scan.syncOffset} but ${HEAD_SUFFIX} continues it from ${next.header.prevFileOffset}`,
        { path: file.path, fileSeq: file.header.fileSeq, offset: scan.syncOffset },
      );
    }
    end = { fileSeq: file.header.fileSeq, offset: scan.syncOffset };
    endModseq = scan.modseq;
  }
  return { end, endModseq, startModseq, headers: files.map((f) => f.header), fromScratch };
}

function notABoundary(path: string, at: LogPosition): LogPositionLostError {
  return new LogPositionLostError("position is not the start of a transaction, or past the end of the log", {
    path, fileSeq: at.fileSeq, offset: at.offset,
  });
}

/** A log file of the chain: held open (the caller releases `file`), its bytes read as a scan asks. */
interface ChainFile {
  path: string;
  header: LogFileHeader;
  file: SharedLogFile;
  lazy: LazyLogBytes;
}

/**
 * The headers of `.log.2` (when it is the file `.log` continues) and `.log`,
 * oldest first, each held open for its bytes. The caller releases each `file`.
 */
function chainFiles(prefix: string): ChainFile[] {
  const head = openRaw(prefix + HEAD_SUFFIX);
  if (head === undefined) throw new LogPositionLostError("no transaction log", { path: prefix + HEAD_SUFFIX });
  const files = [head];
  try {
    if (head.header.prevFileSeq !== 0) {
      const rotated = openRaw(prefix + ROTATED_SUFFIX);
      if (rotated !== undefined && rotated.header.fileSeq === head.header.prevFileSeq) files.unshift(rotated);
      else if (rotated !== undefined) releaseLogFile(rotated.file);
    }
  } catch (err) {
    releaseLogFile(head.file);
    throw err;
  }
  return files;
}

function openRaw(path: string): ChainFile | undefined {
  let file;
  try {
    file = acquireLogFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    const lazy = new LazyLogBytes(file, fs.fstatSync(file.fd).size);
    // The fixed header first, then as much as it says it is (hdr_size, at offset 2).
    lazy.fill(0, LOG_HEADER_MIN_SIZE);
    lazy.fill(0, lazy.bytes.length < 4 ? 0 : lazy.bytes[2] | (lazy.bytes[3] << 8));
    return { path, header: decodeLogHeader(lazy.readBytes, path), file, lazy };
  } catch (err) {
    releaseLogFile(file);
    throw err;
  }
}

/**
 * Like readLog from `from`, but cheap when `from` is in the head file and the
 * running modseq there is known: only the bytes after `from` are read and
 * decoded. This is how an open mailbox catches up with other writers.
 */
export function readLogTail(prefix: string, from: LogPosition, modseqAtFrom: bigint): LogReadResult {
  const headPath = prefix + HEAD_SUFFIX;
  let file;
  try {
    file = acquireLogFile(headPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return readLog(prefix, from);
    throw err;
  }
  try {
    const headerBytes = readRange(file, 0, LOG_HEADER_SIZE);
    const header = decodeLogHeader(headerBytes, headPath);
    if (header.fileSeq !== from.fileSeq) return readLog(prefix, from);
    if (from.offset < header.hdrSize) from = { fileSeq: from.fileSeq, offset: header.hdrSize };
    const size = fs.fstatSync(file.fd).size;
    const transactions: LogTransaction[] = [];
    const tail = readRange(file, from.offset, Math.max(from.offset, size));
    const scan = scanTransactions(tail, header, headPath, (tx) => transactions.push(tx), {
      offset: from.offset, modseq: modseqAtFrom, delta: from.offset,
    });
    return {
      transactions,
      end: { fileSeq: header.fileSeq, offset: scan.syncOffset },
      endModseq: scan.modseq,
      startModseq: modseqAtFrom,
      headers: [header],
      fromScratch: false,
    };
  } finally {
    releaseLogFile(file);
  }
}



