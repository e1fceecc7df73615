/**
 * Records an append may fold as its caller made them instead of decoding
 * the bytes it just encoded from them: those whose decode is known to give
 * back an equal record (every field already in its on-disk form, nothing
 * the decoder would refuse or change). Only the per-message types a mass
 * change writes by the thousand (issue #11: an mdbox expunge's EXPUNGE_GUID
 * and refcount EXT_ATOMIC_INC, a rebuild's or import's EXT_REC_UPDATE);
 * every other record is decoded from the written bytes.
 * test/unit/log/own-records.test.ts checks both ways agree.
 */
import type { LogRecord } from "./types.js";

/**
 * @param extRecordSize the record size of the ext intro before `record` in
 *   its transaction (what an EXT_REC_UPDATE is decoded with), if any.
 */
export function decodesToItself(record: LogRecord, extRecordSize?: number): boolean {
  if (typeof record.external !== "boolean" || typeof record.sync !== "boolean") return false;
  switch (record.type) {
    case "expunge-guid":
      for (const e of record.expunges) {
        // The decoder refuses uid 0 and gives each GUID as a 16-byte Uint8Array.
        if (!isUid(e.uid) || e.guid.length !== 16 || e.guid.constructor !== Uint8Array) return false;
      }
      return true;
    case "ext-atomic-inc":
      for (const u of record.updates) if (!isUid(u.uid) || (u.diff | 0) !== u.diff) return false;
      return true;
    case "ext-rec": {
      // The decoder reads the entries with the intro's size (cutting or padding the data to
      // it) and gives each entry's data as a Uint8Array of exactly that size; no `packed`.
      if (record.recordSize !== extRecordSize || "packed" in record) return false;
      const updates = record.updates;
      for (let i = 0; i < updates.length; i++) {
        const u = updates[i];
        if (!isUid(u.uid) || u.data.length !== extRecordSize || u.data.constructor !== Uint8Array) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/** A u32 other than 0, as the decoder reads a uid. */
function isUid(v: number): boolean {
  return v >>> 0 === v && v !== 0;
}
