/**
 * Copies of what a reusing scan (streamLog / scanTransactions with `reuse`)
 * hands out, for a caller that keeps a transaction past its callback: the
 * scan overwrites its transaction, entries and flag, keyword and ext-rec
 * update records with the next one, and leaves those records in the log's
 * bytes (RawFlagUpdate, RawKeywordUpdate, ext-rec's `packed`). Each copy is
 * what a plain scan decodes: own fields, no view of the log file's buffer.
 */
import { RawFlagUpdate } from "./records/flag-update.js";
import { RawKeywordUpdate } from "./records/keyword-update.js";
import type { LogRecord, LogTransaction } from "./types.js";

/** A record the scan will not overwrite, equal to a plain scan's decode of it. */
export function detachRecord(record: LogRecord): LogRecord {
  const { external, sync } = record;
  if (record instanceof RawFlagUpdate) {
    return { type: "flag-update", updates: record.updates.map((u) => ({ ...u })), external, sync };
  }
  if (record instanceof RawKeywordUpdate) {
    return { type: "keyword-update", modifyType: record.modifyType, name: record.name, ranges: record.ranges.map((r) => ({ ...r })), external, sync };
  }
  if (record.type !== "ext-rec" || record.packed === undefined) return record;
  // As the codec decodes: one copy of the entries, each entry's data a view of it.
  const { packed, recordSize } = record;
  const copy = packed.bytes.slice(packed.start, packed.start + packed.count * packed.entrySize);
  const updates = Array.from({ length: packed.count }, (_, i) => {
    const at = i * packed.entrySize;
    return { uid: packed.view.getUint32(packed.start + at, true), data: copy.subarray(at + 4, at + 4 + recordSize) };
  });
  return { type: "ext-rec", recordSize, updates, external, sync };
}

/** A transaction the scan will not overwrite, its records detached (detachRecord). */
export function detachTransaction(tx: LogTransaction): LogTransaction {
  return {
    ...tx,
    position: { ...tx.position },
    end: { ...tx.end },
    entries: tx.entries.map((e) => ({ ...e, position: { ...e.position }, record: detachRecord(e.record) })),
  };
}
