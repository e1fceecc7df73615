import * as fs from "node:fs";
import { ByteWriter } from "./bytes.js";
import { encodeTransaction, encodeTransactionInto } from "./encode-file.js";
import { scanTransactions } from "./file.js";
import type { LogFileHeader, LogRecord, LogTransaction } from "./types.js";

/** Where a log file's complete data ends, as known to the appender. */
export interface AppendCursor {
  header: LogFileHeader;
  syncOffset: number;
  modseq: bigint;
}

/**
 * Encodes `transactions` for appending at `cursor` and scans them back, so
 * that the caller learns the positions and modseqs Dovecot will see without
 * re-reading the file (records that decode to themselves are not decoded:
 * see codec.ts decodesToItself). Each transaction is framed by a BOUNDARY when it has
 * more than one record.
 */
export function prepareAppend(
  cursor: AppendCursor,
  transactions: ReadonlyArray<readonly LogRecord[]>,
  path: string,
  syncTail?: (tailOffset: number) => LogRecord,
): { bytes: Uint8Array; decoded: LogTransaction[]; end: AppendCursor } {
  const out = new ByteWriter(256);
  // Every record in the order written: the scan's entries, one for one (see its `written`).
  const written: LogRecord[] = [];
  for (const records of transactions) {
    if (records.length === 0) continue;
    encodeTransactionInto(records, out);
    for (const r of records) written.push(r);
  }
  if (syncTail) {
    // The tail points just past its own record, whose size does not depend on the value.
    const size = encodeTransaction([syncTail(0)]).length;
    const tail = syncTail(cursor.syncOffset + out.length + size);
    encodeTransactionInto([tail], out);
    written.push(tail);
  }
  const bytes = out.result();
  const decoded: LogTransaction[] = [];
  // The bytes are scanned as any reader would (positions, modseqs, the decoder's checks), but
  // records that decode to themselves are not decoded again (issue #11: an expunge's GUIDs).
  const scan = scanTransactions(bytes, cursor.header, path, (tx) => decoded.push(tx), {
    offset: cursor.syncOffset,
    modseq: cursor.modseq,
    delta: cursor.syncOffset,
  }, { written });
  return {
    bytes,
    decoded,
    end: { header: cursor.header, syncOffset: scan.syncOffset, modseq: scan.modseq },
  };
}

/**
 * Writes `bytes` at `offset` with one pwrite (the lock is held, so nobody else
 * writes). On a failed or short write, truncates back to `offset` so no
 * partial transaction is left behind, and rethrows.
 */
export function writeAt(fd: number, bytes: Uint8Array, offset: number): void {
  try {
    const written = fs.writeSync(fd, bytes, 0, bytes.length, offset);
    if (written !== bytes.length) throw new Error(`short write: ${written} of ${bytes.length} bytes`);
  } catch (err) {
    try {
      fs.ftruncateSync(fd, offset);
    } catch (cleanupErr) {
      // Best-effort cleanup while the write's error is thrown: that error is the one to
      // report, and the reader ignores a torn tail anyway.
      void cleanupErr;
    }
    throw err;
  }
}
