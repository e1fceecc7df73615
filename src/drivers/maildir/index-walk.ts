/**
 * Walking an index map's messages quickly for a Maildir sync: UID and flags
 * byte straight from the record rows, keyword names only for messages whose
 * keyword bitmap is not empty (building names for 100k messages would cost
 * more than the rest of a sync).
 */
import { KEYWORDS_EXT_NAME } from "../../projections/ext-registry.js";
import { extension, keywordsAt } from "../../projections/read.js";
import type { IndexMapState } from "../../projections/state.js";

/** One message as the sync needs it. */
export interface IndexMessage {
  /** 0-based position (seq − 1). */
  readonly index: number;
  readonly uid: number;
  /** The flags byte (system flags, BACKEND, DIRTY). */
  readonly flags: number;
  /** True when at least one keyword bit is set. */
  readonly hasKeywords: boolean;
}

/** Calls `fn` for every message in sequence order. */
export function forEachIndexMessage(state: IndexMapState, fn: (m: IndexMessage) => void): void {
  const recordSize = state.records.recordSize;
  const kw = extension(state, KEYWORDS_EXT_NAME);
  const kwOffset = kw && kw.recordSize > 0 ? kw.recordOffset : -1;
  const kwSize = kw?.recordSize ?? 0;
  let index = 0;
  state.records.forEachChunk((rows) => {
    const view = new DataView(rows.buffer, rows.byteOffset, rows.byteLength);
    for (let off = 0; off < rows.length; off += recordSize) {
      let hasKeywords = false;
      if (kwOffset >= 0) for (let b = 0; b < kwSize && !hasKeywords; b++) hasKeywords = rows[off + kwOffset + b] !== 0;
      fn({ index, uid: view.getUint32(off, true), flags: rows[off + 4], hasKeywords });
      index++;
    }
  });
}

/** Keyword names of the message at `index` ([] when it has none). */
export function indexKeywords(state: IndexMapState, m: IndexMessage): string[] {
  return m.hasKeywords ? keywordsAt(state, m.index) : [];
}
