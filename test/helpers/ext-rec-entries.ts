/** The entries of an ext-rec record as {uid, data}, whether built as objects or packed (packed-updates.ts). */
import type { ExtRecUpdate, LogRecord } from "../../src/log/types.js";

export function extRecEntries(record: Extract<LogRecord, { type: "ext-rec" }>): ExtRecUpdate[] {
  const p = record.packed;
  if (p === undefined) return record.updates;
  const out: ExtRecUpdate[] = [];
  for (let i = 0; i < p.count; i++) {
    const at = p.start + i * p.entrySize;
    out.push({ uid: p.view.getUint32(at, true), data: p.bytes.slice(at + 4, at + 4 + record.recordSize) });
  }
  return out;
}
