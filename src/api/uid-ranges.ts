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
  const out: UidRange[] = [];
  let last: UidRange | undefined;
  for (const uid of sorted) {
    if (!(uid >= 1)) continue; // as normalizeRanges: no uid 0
    if (last !== undefined && uid <= last.uid2 + 1) last.uid2 = Math.max(last.uid2, uid);
    else out.push((last = { uid1: uid, uid2: uid }));
  }
  return out;
}
