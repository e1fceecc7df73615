import { ByteWriter } from "./bytes.js";
import { encodeRecordInto } from "./codec.js";
import { encodeLogHeader } from "./header.js";
import type { LogFileHeader, LogRecord } from "./types.js";

/**
 * Frames one transaction as Dovecot does: a BOUNDARY first when there is more
 * than one record (its size covers the whole transaction), none otherwise.
 * `framed` forces or suppresses the boundary, for byte-exact re-encoding.
 */
export function encodeTransaction(records: readonly LogRecord[], framed = records.length > 1): Uint8Array {
  const out = new ByteWriter(256);
  encodeTransactionInto(records, out, framed);
  return out.result();
}

export function encodeTransactionInto(records: readonly LogRecord[], out: ByteWriter, framed = records.length > 1): void {
  const start = out.length;
  if (framed) encodeRecordInto({ type: "boundary", size: 0, external: true, sync: records[0]?.sync ?? false }, out);
  for (const record of records) encodeRecordInto(record, out);
  if (framed) out.view.setUint32(start + 8, out.length - start, true);
}

/** A whole log file: header plus transactions, e.g. to re-encode a parsed file. */
export function encodeLogFile(
  header: LogFileHeader,
  transactions: ReadonlyArray<{ records: readonly LogRecord[]; framed: boolean }>,
): Uint8Array {
  const out = new ByteWriter(4096);
  out.raw(encodeLogHeader(header));
  for (const tx of transactions) encodeTransactionInto(tx.records, out, tx.framed);
  return out.result();
}
