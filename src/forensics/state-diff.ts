import { flagNames } from "../shared/flags.js";
import { getHeader, highestModseq, recordAt, messageCount, type MessageRecord } from "../projections/read.js";
import type { IndexMapState } from "../projections/state.js";

/** What changed between two states of one mailbox (forensics: `mailstore diff`). */
export interface StateDiff {
  appended: number[];
  expunged: number[];
  changed: Array<{
    uid: number;
    flags?: { before: string[]; after: string[] };
    keywords?: { before: string[]; after: string[] };
    modseq?: { before: bigint; after: bigint };
  }>;
  header: Record<string, { before: number | bigint; after: number | bigint }>;
}

/** Compares `a` (earlier) with `b` (later) message by message and field by field. */
export function diffStates(a: IndexMapState, b: IndexMapState): StateDiff {
  const before = byUid(a);
  const after = byUid(b);
  const diff: StateDiff = { appended: [], expunged: [], changed: [], header: {} };
  for (const uid of before.keys()) if (!after.has(uid)) diff.expunged.push(uid);
  for (const [uid, rb] of after) {
    const ra = before.get(uid);
    if (!ra) {
      diff.appended.push(uid);
      continue;
    }
    const change: StateDiff["changed"][number] = { uid };
    const fa = flagNames(ra.flags), fb = flagNames(rb.flags);
    if (fa.join() !== fb.join()) change.flags = { before: fa, after: fb };
    const ka = [...ra.keywords].sort(), kb = [...rb.keywords].sort();
    if (ka.join("\0") !== kb.join("\0")) change.keywords = { before: ka, after: kb };
    if (ra.modseq !== rb.modseq) change.modseq = { before: ra.modseq, after: rb.modseq };
    if (Object.keys(change).length > 1) diff.changed.push(change);
  }
  const ha = getHeader(a), hb = getHeader(b);
  for (const key of ["uidValidity", "nextUid", "messagesCount", "seenMessagesCount", "deletedMessagesCount"] as const) {
    if (ha[key] !== hb[key]) diff.header[key] = { before: ha[key], after: hb[key] };
  }
  if (highestModseq(a) !== highestModseq(b)) diff.header.highestModseq = { before: highestModseq(a), after: highestModseq(b) };
  return diff;
}

function byUid(state: IndexMapState): Map<number, MessageRecord> {
  const out = new Map<number, MessageRecord>();
  for (let seq = 1; seq <= messageCount(state); seq++) {
    const r = recordAt(state, seq)!;
    out.set(r.uid, r);
  }
  return out;
}
