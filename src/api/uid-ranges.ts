/** UID ranges as transactions take them, and the UIDs of a state they cover. */
import type { UidRange } from "../log/types.js";
import type { IndexMapState } from "../projections/state.js";

/** UIDs of `ranges` that exist in `state`, ascending. */
export function existingUids(state: IndexMapState, ranges: readonly UidRange[]): number[] {
  const out: number[] = [];
  for (const r of ranges) {
    const span = state.records.rangeOfUids(r.uid1, r.uid2);
    if (!span) continue;
    state.records.visitRows(span[0], span[1], (_bytes, words, offset) => void out.push(words[offset >>> 2]));
  }
  return out;
}

/** Sorted, merged, non-overlapping ranges, as log records require. */
export function normalizeRanges(ranges: readonly UidRange[]): UidRange[] {
  const sorted = ranges.filter((r) => r.uid1 >= 1 && r.uid1 <= r.uid2).map((r) => ({ ...r })).sort((a, b) => a.uid1 - b.uid1);
  const out: UidRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.uid1 <= last.uid2 + 1) last.uid2 = Math.max(last.uid2, r.uid2);
    else out.push(r);
  }
  return out;
}

/** UIDs in any order (e.g. from searchUids) as the sorted, merged ranges transactions take. */
export function toRanges(uids: readonly number[]): UidRange[] {
  // Usually ascending already (a search's, a transaction's): then one pass, no sort and no object per uid.
  let sorted = uids;
  for (let i = 1; i < uids.length; i++) {
    if (uids[i] < uids[i - 1]) {
      sorted = [...uids].sort((a, b) => a - b);
      break;
    }
  }
  const ranges = new UidRangeBuilder();
  for (let i = 0; i < sorted.length; i++) ranges.add(sorted[i]);
  return ranges.ranges;
}

/**
 * The ranges of UIDs given in ascending order (repeats allowed), built as
 * they come: a flag change of a whole mailbox gets its one range without
 * an array of 20,000 UIDs to merge afterwards (issue #11).
 */
export class UidRangeBuilder {
  /** Sorted, merged, non-overlapping, as log records require. */
  readonly ranges: UidRange[] = [];
  private last: UidRange | undefined;

  /** Adds `uid` (not below the last one added; 0 is skipped, as normalizeRanges does). */
  add(uid: number): void {
    const last = this.last;
    if (last !== undefined && uid <= last.uid2 + 1) {
      if (uid > last.uid2) last.uid2 = uid;
    } else if (uid >= 1) this.ranges.push((this.last = { uid1: uid, uid2: uid }));
  }

  get isEmpty(): boolean {
    return this.last === undefined;
  }
}
