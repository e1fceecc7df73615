/**
 * Exact log bytes between two positions, for shipping a mailbox's log to
 * another machine (src/replication), and decoding them there. A range may
 * cross one rotation: then it is two segments, one per file, each with its
 * file's header bytes so that the receiver decodes it as Dovecot would.
 */
import * as fs from "node:fs";
import { LogPositionLostError } from "../shared/errors.js";
import { scanTransactions } from "./file.js";
import { decodeLogHeader } from "./header.js";
import { acquireLogFile, readRange, releaseLogFile } from "./shared-file.js";
import { LOG_HEADER_SIZE, type LogPosition, type LogTransaction } from "./types.js";
import { HEAD_SUFFIX, ROTATED_SUFFIX } from "./view.js";

/** The bytes of one log file between two offsets. */
export interface LogSegment {
  fileSeq: number;
  /** The file's header (hdr_size bytes), as on disk. */
  headerBytes: Uint8Array;
  /** File offset of `bytes[0]`: a transaction start. */
  fromOffset: number;
  /** The file's running modseq at `fromOffset`. */
  modseqAtFrom: bigint;
  /** Complete transactions, exactly as in the file. */
  bytes: Uint8Array;
}

/**
 * Reads the log between `from` (a transaction start, whose running modseq is
 * `modseqAtFrom`; undefined for the start of a file: its initial modseq) and `to` (a transaction end). Reads through the process's
 * shared descriptors, so a writer's fcntl lock survives it.
 * @throws LogPositionLostError when `from`'s file is neither `.log` nor `.log.2`.
 */
export function readLogSegments(prefix: string, from: LogPosition, modseqAtFrom: bigint | undefined, to: LogPosition): LogSegment[] {
  const out: LogSegment[] = [];
  if (from.fileSeq !== to.fileSeq) {
    const older = readSegment(prefix + ROTATED_SUFFIX, from, modseqAtFrom, undefined);
    out.push(older);
    const head = readSegment(prefix + HEAD_SUFFIX, { fileSeq: to.fileSeq, offset: 0 }, undefined, to.offset);
    if (head.bytes.length > 0) out.push(head);
    return out;
  }
  return [readSegment(prefix + HEAD_SUFFIX, from, modseqAtFrom, to.offset)];
}

function readSegment(path: string, from: LogPosition, modseqAtFrom: bigint | undefined, toOffset: number | undefined): LogSegment {
  const file = acquireLogFile(path);
  try {
    const peek = readRange(file, 0, LOG_HEADER_SIZE);
    const header = decodeLogHeader(peek, path);
    if (header.fileSeq !== from.fileSeq) {
      throw new LogPositionLostError(`log file_seq ${from.fileSeq} is not in this file (it has ${header.fileSeq})`, { path, fileSeq: from.fileSeq, offset: from.offset });
    }
    const headerBytes = readRange(file, 0, header.hdrSize);
    const start = Math.max(from.offset, header.hdrSize);
    const modseq = modseqAtFrom ?? header.initialModseq;
    if (toOffset !== undefined) {
      return { fileSeq: header.fileSeq, headerBytes, fromOffset: start, modseqAtFrom: modseq, bytes: readRange(file, start, toOffset) };
    }
    // The rest of a rotated file: up to its last complete transaction.
    const rest = readRange(file, start, fs.fstatSync(file.fd).size);
    const { syncOffset } = scanTransactions(rest, header, path, () => undefined, { offset: start, modseq, delta: start });
    return { fileSeq: header.fileSeq, headerBytes, fromOffset: start, modseqAtFrom: modseq, bytes: rest.subarray(0, syncOffset - start) };
  } finally {
    releaseLogFile(file);
  }
}

/**
 * Decodes a shipped segment into transactions with the positions and
 * modseqs they have in the sender's log.
 * @throws LogCorruptedError / LogHeaderError for bytes Dovecot would refuse.
 */
export function decodeLogSegment(segment: LogSegment, path: string): LogTransaction[] {
  const header = decodeLogHeader(segment.headerBytes, path);
  const out: LogTransaction[] = [];
  scanTransactions(segment.bytes, header, path, (tx) => out.push(tx), {
    offset: segment.fromOffset, modseq: segment.modseqAtFrom, delta: segment.fromOffset,
  });
  return out;
}
