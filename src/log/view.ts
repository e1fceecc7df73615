import { LogChainError, LogPositionLostError } from "../errors.js";
import * as fs from "node:fs";
import { parseLogBytes, scanTransactions, type ParsedLogFile } from "./file.js";
import { decodeLogHeader } from "./header.js";
import { acquireLogFile, readRange, readWhole, releaseLogFile } from "./shared-file.js";
import { LOG_HEADER_SIZE, type LogFileHeader, type LogPosition, type LogTransaction } from "./types.js";

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
  const files = readChain(prefix);
  const head = files[files.length - 1];
  let startIndex = 0;
  let fromScratch = files[0].header.prevFileSeq === 0;
  let startOffset = files[0].header.hdrSize;
  if (from !== undefined) {
    startIndex = files.findIndex((f) => f.header.fileSeq === from.fileSeq);
    if (startIndex < 0) {
      throw new LogPositionLostError(`log file_seq ${from.fileSeq} is no longer available`, {
        path: prefix + HEAD_SUFFIX, fileSeq: from.fileSeq, offset: from.offset,
      });
    }
    startOffset = from.offset;
    checkIsBoundary(files[startIndex], from);
    fromScratch = false;
  }
  const transactions: LogTransaction[] = [];
  let startModseq = files[startIndex].header.initialModseq;
  for (const tx of files[startIndex].transactions) if (tx.end.offset <= startOffset) startModseq = tx.modseq;
  for (let i = startIndex; i < files.length; i++) {
    const file = files[i];
    if (i > startIndex && file.header.prevFileSeq === 0) {
      // An index reset: whatever came before no longer counts.
      transactions.length = 0;
      fromScratch = true;
      startModseq = file.header.initialModseq;
    }
    const minOffset = i === startIndex ? startOffset : 0;
    for (const tx of file.transactions) if (tx.position.offset >= minOffset) transactions.push(tx);
  }
  return {
    transactions,
    end: { fileSeq: head.header.fileSeq, offset: head.syncOffset },
    endModseq: head.endModseq,
    startModseq,
    headers: files.map((f) => f.header),
    fromScratch,
  };
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
    if (header.fileSeq !== from.fileSeq || from.offset < header.hdrSize) return readLog(prefix, from);
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

/** Parses `.log.2` (when it chains to `.log`) and `.log`, oldest first. */
export function readChain(prefix: string): ParsedLogFile[] {
  const headPath = prefix + HEAD_SUFFIX;
  const head = readParsed(headPath);
  if (head === undefined) {
    throw new LogPositionLostError("no transaction log", { path: headPath });
  }
  const files = [head];
  if (head.header.prevFileSeq !== 0) {
    const rotated = readParsed(prefix + ROTATED_SUFFIX);
    if (rotated !== undefined && rotated.header.fileSeq === head.header.prevFileSeq) {
      if (rotated.syncOffset !== head.header.prevFileOffset) {
        throw new LogChainError(
          `${ROTATED_SUFFIX} ends at ${rotated.syncOffset} but ${HEAD_SUFFIX} continues it from ${head.header.prevFileOffset}`,
          { path: rotated.path, fileSeq: rotated.header.fileSeq, offset: rotated.syncOffset },
        );
      }
      files.unshift(rotated);
    }
  }
  return files;
}

function readParsed(path: string): ParsedLogFile | undefined {
  let file;
  try {
    file = acquireLogFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    return parseLogBytes(readWhole(file), path);
  } finally {
    releaseLogFile(file);
  }
}

function checkIsBoundary(file: ParsedLogFile, at: LogPosition): void {
  if (at.offset === file.header.hdrSize || at.offset === file.syncOffset) return;
  if (file.transactions.some((tx) => tx.position.offset === at.offset)) return;
  throw new LogPositionLostError(
    at.offset > file.syncOffset ? "position is past the end of the log" : "position is not the start of a transaction",
    { path: file.path, fileSeq: at.fileSeq, offset: at.offset },
  );
}
