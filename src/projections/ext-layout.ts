/**
 * Where each extension's per-message field sits inside a record, and how big
 * a record is (index-file.md §5.1). Dovecot recomputes the whole layout
 * whenever an extension is added or resized, moving existing data; readers of
 * our dovecot.index and of Dovecot's must agree byte for byte, so this follows
 * its algorithm exactly, including its non-optimal choices.
 */
import { BASE_RECORD_SIZE, RECORD_MIN_EXT_OFFSET } from "./base-header.js";

export interface FieldShape {
  readonly recordSize: number;
  readonly recordAlign: number;
}

export interface RecordLayout {
  /** One offset per extension, in extension order; 0 for header-only ones. */
  readonly offsets: number[];
  readonly recordSize: number;
}

/**
 * Places the fields: sort by alignment, largest first (a stable sort, as
 * glibc's qsort is for these small arrays), then repeatedly put the first
 * unplaced field whose alignment divides the current offset there; when none
 * fits, skip to the next multiple of the smallest unplaced alignment. The
 * record size is rounded up to the largest alignment of any extension, header-
 * only ones included (so `hdr-vsize`, align 8 with no field, still counts).
 */
export function layoutRecord(exts: readonly FieldShape[]): RecordLayout {
  const order = exts.map((_, i) => i).sort((a, b) => exts[b].recordAlign - exts[a].recordAlign);
  const offsets = exts.map(() => 0);
  const placed = exts.map((e) => e.recordSize === 0);
  let maxAlign = 4;
  for (const e of exts) if (e.recordAlign > maxAlign) maxAlign = e.recordAlign;

  let offset = RECORD_MIN_EXT_OFFSET;
  for (;;) {
    let minAlign = Infinity;
    let chosen = -1;
    for (const i of order) {
      if (placed[i]) continue;
      if (offset % exts[i].recordAlign === 0) {
        chosen = i;
        break;
      }
      if (exts[i].recordAlign < minAlign) minAlign = exts[i].recordAlign;
    }
    if (chosen >= 0) {
      offsets[chosen] = offset;
      placed[chosen] = true;
      offset += exts[chosen].recordSize;
    } else if (minAlign === Infinity) {
      break;
    } else {
      offset += minAlign - (offset % minAlign);
    }
  }
  if (offset % maxAlign !== 0) offset += maxAlign - (offset % maxAlign);
  return { offsets, recordSize: Math.max(offset, BASE_RECORD_SIZE) };
}

/** One copy of a field from the old record layout to the new one. */
export interface FieldMove {
  readonly from: number;
  readonly to: number;
  readonly size: number;
}
