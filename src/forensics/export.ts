import * as fs from "node:fs";
import { InvalidArgumentError, LogPositionLostError } from "../shared/errors.js";
import { writeNewFile } from "../shared/file-mode.js";
import { ByteWriter } from "../log/bytes.js";
import { encodeTransactionInto } from "../log/encode-file.js";
import { encodeLogHeader } from "../log/header.js";
import { HEAD_SUFFIX, readLog } from "../log/view.js";
import type { LogPosition } from "../log/types.js";
import type { BundleTransaction, EventBundle } from "./bundle.js";

/** dovecot.index base header fields (index-file.md §3) that tie it to a log position. */
const INDEX_LOG_FILE_SEQ = 60;
const INDEX_LOG_TAIL_OFFSET = 64;
const INDEX_LOG_HEAD_OFFSET = 68;

export interface ExportOptions {
  /** Only transactions that end at or before this position. */
  until?: LogPosition;
}

/**
 * Reads the log of `prefix` (e.g. `<dir>/dovecot.index`) into a bundle. If
 * the log does not start from an empty state, `dovecot.index` is embedded so
 * that the bundle still replays to the full state.
 */
export function exportBundle(prefix: string, options: ExportOptions = {}): EventBundle {
  let read = readLog(prefix);
  let checkpoint: Uint8Array | undefined;
  if (!read.fromScratch) {
    // Older files are gone: start from the checkpoint and the log position it records.
    if (!fs.existsSync(prefix)) {
      throw new LogPositionLostError("the log does not start empty and there is no dovecot.index to start from", { path: prefix });
    }
    checkpoint = new Uint8Array(fs.readFileSync(prefix));
    const view = new DataView(checkpoint.buffer, checkpoint.byteOffset, checkpoint.byteLength);
    read = readLog(prefix, { fileSeq: view.getUint32(INDEX_LOG_FILE_SEQ, true), offset: view.getUint32(INDEX_LOG_HEAD_OFFSET, true) });
  }
  const transactions: BundleTransaction[] = [];
  for (const tx of read.transactions) {
    if (options.until && isAfter(tx.end, options.until)) break;
    transactions.push({ position: tx.position, modseq: tx.modseq, framed: tx.framed, records: tx.entries.map((e) => e.record) });
  }
  const bundle: EventBundle = {
    format: "mailstore-events",
    version: 1,
    source: prefix + HEAD_SUFFIX,
    firstHeader: read.headers[0],
    startModseq: read.startModseq,
    transactions,
  };
  if (checkpoint) bundle.checkpoint = checkpoint;
  return bundle;
}

/**
 * Writes a bundle's transactions as one new log at `<prefix>.log` (refusing
 * to overwrite), keeping the source's indexid and modseqs. Without a
 * checkpoint the log starts empty (prev_file_seq 0). With one, the
 * checkpoint is written as `prefix`, re-pointed at the new log's first
 * record, and the log claims to continue an older file so that readers keep
 * the checkpoint's state. Returns the new log's end.
 */
export function importBundle(bundle: EventBundle, prefix: string): LogPosition {
  const logPath = prefix + HEAD_SUFFIX;
  if (fs.existsSync(logPath)) throw new InvalidArgumentError("refusing to overwrite an existing log", { path: logPath });
  const h = bundle.firstHeader;
  const fileSeq = bundle.checkpoint ? Math.max(h.fileSeq, 2) : h.fileSeq;
  const out = new ByteWriter(1 << 16);
  out.raw(encodeLogHeader({
    indexId: h.indexId,
    fileSeq,
    prevFileSeq: bundle.checkpoint ? fileSeq - 1 : 0,
    prevFileOffset: 0,
    createStamp: h.createStamp,
    initialModseq: bundle.startModseq,
  }));
  const firstRecord = out.length;
  for (const tx of bundle.transactions) encodeTransactionInto(tx.records, out, tx.framed);
  if (bundle.checkpoint) {
    const checkpoint = Uint8Array.from(bundle.checkpoint);
    const view = new DataView(checkpoint.buffer);
    view.setUint32(INDEX_LOG_FILE_SEQ, fileSeq, true);
    view.setUint32(INDEX_LOG_TAIL_OFFSET, firstRecord, true);
    view.setUint32(INDEX_LOG_HEAD_OFFSET, firstRecord, true);
    writeNewFile(prefix, checkpoint);
  }
  writeNewFile(logPath, out.result());
  return { fileSeq, offset: out.length };
}

function isAfter(a: LogPosition, b: LogPosition): boolean {
  return a.fileSeq > b.fileSeq || (a.fileSeq === b.fileSeq && a.offset > b.offset);
}
