import { MailFlag } from "../log/types.js";
import type { UidRange } from "../log/types.js";
import type { IndexMapState } from "../projections/state.js";
import { NO_KEYWORDS, recordAt } from "../projections/read.js";
import { UidRangeBuilder } from "./uid-ranges.js";

/** The part of IMAP SEARCH that administrators use most (doveadm's search query). */
export type SearchKey =
  | { type: "all" }
  | { type: "uid"; ranges: UidRange[] }
  | { type: "seq"; ranges: UidRange[] }
  | { type: "flag"; flag: number; set: boolean }
  | { type: "keyword"; name: string; set: boolean }
  | { type: "not"; key: SearchKey }
  | { type: "or"; keys: [SearchKey, SearchKey] };

/** A search: every key must match (juxtaposition is AND). */
export type SearchQuery = SearchKey[];

/** UIDs of the messages in `state` matching every key, ascending. `*` in a set is the highest. */
export function searchUids(state: IndexMapState, query: SearchQuery): number[] {
  const out: number[] = [];
  visitMatches(state, query, (uid) => out.push(uid));
  return out;
}

/**
 * searchUids as the ranges a transaction takes (toRanges of it), without
 * the array of every uid: a flag change or expunge of 20,000 messages
 * builds one range, and `all` or one uid or sequence range walks no row.
 * A range may span uids no message has (expunged ones): transactions act
 * on the messages there are.
 */
export function searchRanges(state: IndexMapState, query: SearchQuery): UidRange[] {
  const ranges = new UidRangeBuilder();
  let whole: UidRange[] | undefined;
  visitMatches(state, query, (uid) => ranges.add(uid), (first, last) => {
    whole = [{ uid1: state.records.uidAt(first), uid2: state.records.uidAt(last) }];
  });
  return whole ?? ranges.ranges;
}

/**
 * Calls `visit` with the uid of each matching message, ascending; when
 * every row in reach matches (the query is all `all`) and `everyRow` is
 * given, calls that with the rows (0-based, inclusive) instead.
 */
function visitMatches(state: IndexMapState, query: SearchQuery, visit: (uid: number) => void, everyRow?: (first: number, last: number) => void): void {
  const count = state.records.count;
  if (count === 0) return;
  const lastUid = state.records.uidAt(count - 1);
  const rows = rowsInReach(state, query, count, lastUid);
  if (rows === undefined) return;
  const [first, last] = rows;
  if (query.some(needsKeywords)) {
    // Keyword names are looked up only for queries that need them: building every
    // record showed in a whole-mailbox `flags add … all`.
    for (let seq = first + 1; seq <= last + 1; seq++) {
      const record = recordAt(state, seq)!;
      if (query.every((key) => matches(key, seq, record.uid, record.flags, record.keywords, count, lastUid))) visit(record.uid);
    }
    return;
  }
  // Straight from the rows: uid and system flags (the u8 at offset 4 of Dovecot's record).
  const everything = everyRowInReach(query);
  if (everything && everyRow) {
    everyRow(first, last);
    return;
  }
  state.records.visitRows(first, last, (bytes, words, offset, index) => {
    const uid = words[offset >>> 2];
    if (everything || query.every((key) => matches(key, index + 1, uid, bytes[offset + 4], NO_KEYWORDS, count, lastUid))) visit(uid);
  });
}

/**
 * The rows (0-based, inclusive) a message must be in to match: those between
 * the lowest and highest value of each top-level uid and sequence key, or
 * undefined when none can match. `flags add … uid 10001` then reads one row,
 * not the whole mailbox; every row in reach is still matched key by key.
 */
function rowsInReach(state: IndexMapState, query: SearchQuery, count: number, lastUid: number): [number, number] | undefined {
  let first = 0;
  let last = count - 1;
  for (const key of query) {
    if (key.type !== "uid" && key.type !== "seq") continue;
    const [low, high] = span(key.ranges, key.type === "uid" ? lastUid : count);
    const rows = key.type === "uid" ? state.records.rangeOfUids(low, high) : high < 1 || low > count ? undefined : [Math.max(low, 1) - 1, Math.min(high, count) - 1];
    if (rows === undefined) return undefined;
    first = Math.max(first, rows[0]);
    last = Math.min(last, rows[1]);
  }
  return first <= last ? [first, last] : undefined;
}

/** The lowest and highest value the ranges cover, `*` read as `highest` (as inRanges reads it). */
function span(ranges: readonly UidRange[], highest: number): [number, number] {
  let low = Infinity;
  let high = -Infinity;
  for (const r of ranges) {
    const a = r.uid1 === 0xffffffff ? highest : r.uid1;
    const b = r.uid2 === 0xffffffff ? highest : r.uid2;
    low = Math.min(low, a, b);
    high = Math.max(high, a, b);
  }
  return [low, high];
}

/**
 * Whether every row rowsInReach gives matches: the query narrows by one uid
 * or sequence range at most (`uid 1:10000`, `all`), and those rows are
 * exactly that range's messages.
 */
function everyRowInReach(query: SearchQuery): boolean {
  let narrowing = 0;
  for (const key of query) {
    if (key.type === "all") continue;
    if ((key.type !== "uid" && key.type !== "seq") || key.ranges.length !== 1 || ++narrowing > 1) return false;
  }
  return true;
}

function needsKeywords(key: SearchKey): boolean {
  if (key.type === "keyword") return true;
  if (key.type === "not") return needsKeywords(key.key);
  if (key.type === "or") return key.keys.some(needsKeywords);
  return false;
}

function matches(key: SearchKey, seq: number, uid: number, flags: number, keywords: readonly string[], count: number, lastUid: number): boolean {
  switch (key.type) {
    case "all":
      return true;
    case "uid":
      return inRanges(uid, key.ranges, lastUid);
    case "seq":
      return inRanges(seq, key.ranges, count);
    case "flag":
      return ((flags & key.flag) !== 0) === key.set;
    case "keyword":
      return keywords.some((k) => k.toLowerCase() === key.name.toLowerCase()) === key.set;
    case "not":
      return !matches(key.key, seq, uid, flags, keywords, count, lastUid);
    case "or":
      return key.keys.some((k) => matches(k, seq, uid, flags, keywords, count, lastUid));
  }
}

/** 0xffffffff in a range stands for `*`: the highest value present. */
function inRanges(value: number, ranges: readonly UidRange[], highest: number): boolean {
  return ranges.some((r) => {
    const a = r.uid1 === 0xffffffff ? highest : r.uid1;
    const b = r.uid2 === 0xffffffff ? highest : r.uid2;
    return value >= Math.min(a, b) && value <= Math.max(a, b);
  });
}

/** IMAP SEARCH's system flag keys (`seen`, `unseen`, `deleted`, …, lowercase) as the `flag` SearchKey each stands for. */
export const FLAG_KEYS: Record<string, { flag: number; set: boolean }> = {
  seen: { flag: MailFlag.SEEN, set: true },
  unseen: { flag: MailFlag.SEEN, set: false },
  deleted: { flag: MailFlag.DELETED, set: true },
  undeleted: { flag: MailFlag.DELETED, set: false },
  flagged: { flag: MailFlag.FLAGGED, set: true },
  unflagged: { flag: MailFlag.FLAGGED, set: false },
  answered: { flag: MailFlag.ANSWERED, set: true },
  unanswered: { flag: MailFlag.ANSWERED, set: false },
  draft: { flag: MailFlag.DRAFT, set: true },
  undraft: { flag: MailFlag.DRAFT, set: false },
};
