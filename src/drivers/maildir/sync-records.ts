/**
 * The log records of a Maildir sync, in the order Dovecot's transaction
 * export writes them (transaction-log.md §7): the `maildir` extension
 * header, prepended header updates (uid_validity), APPEND, FLAG_UPDATE,
 * KEYWORD_UPDATE (per keyword: add, then remove), EXPUNGE_GUID, other header
 * updates (next_uid). Everything is EXTERNAL: the files already say so.
 *
 * A syncing transaction is followed, outside its boundary, by a
 * HEADER_UPDATE of log_file_tail_offset whose value is the end of that very
 * record: "the files have caught up with everything up to here" (observed
 * after `doveadm flags` and after every index sync).
 */
import type { LogRecord, UidRange } from "../../log/types.js";
import type { IndexMapState } from "../../projections/state.js";
import { maildirHeaderRecords, type MaildirIndexHeader } from "./index-header.js";

const external = { external: true, sync: false } as const;

/** What a sync found, to be logged. Per-message lists are in index (seq) order. */
export interface SyncOutcome {
  /** The mailbox's UIDVALIDITY, when the index has none yet. */
  uidValidity?: number;
  /** The new `maildir` header, when it changed enough to be written. */
  header?: MaildirIndexHeader;
  appends: Array<{ uid: number; flags: number; keywords: string[] }>;
  /** Flags a file has that the index does not (REPLACE), and DIRTY bits to clear. */
  flagReplaces: Array<{ seq: number; uid: number; add: number; remove: number }>;
  keywordChanges: Array<{ seq: number; uid: number; name: string; add: boolean }>;
  expunges: number[];
  /** A next_uid above what the appends leave, when the uidlist has used more UIDs. */
  nextUid?: number;
}

export function emptyOutcome(): SyncOutcome {
  return { appends: [], flagReplaces: [], keywordChanges: [], expunges: [] };
}

/** @returns true when the outcome writes nothing. */
export function outcomeIsEmpty(o: SyncOutcome): boolean {
  return o.uidValidity === undefined && o.header === undefined && o.appends.length === 0 && o.flagReplaces.length === 0
    && o.keywordChanges.length === 0 && o.expunges.length === 0 && o.nextUid === undefined;
}

function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value >>> 0, true);
  return out;
}

/** Merges per-message items with equal `key` whose sequence numbers are adjacent into UID ranges. */
function seqRanges<T extends { seq: number; uid: number }>(items: readonly T[], key: (t: T) => string): Array<{ key: string; first: T; range: UidRange }> {
  const out: Array<{ key: string; first: T; range: UidRange; lastSeq: number }> = [];
  const open = new Map<string, { key: string; first: T; range: UidRange; lastSeq: number }>();
  for (const item of items) {
    const k = key(item);
    const cur = open.get(k);
    if (cur && cur.lastSeq + 1 === item.seq) {
      cur.range.uid2 = item.uid;
      cur.lastSeq = item.seq;
    } else {
      const next = { key: k, first: item, range: { uid1: item.uid, uid2: item.uid }, lastSeq: item.seq };
      out.push(next);
      open.set(k, next);
    }
  }
  return out.sort((a, b) => a.range.uid1 - b.range.uid1);
}

/** @returns the records of one syncing transaction (empty when there is nothing to say). */
export function syncRecords(state: IndexMapState, o: SyncOutcome): LogRecord[] {
  const records: LogRecord[] = [];
  if (o.header) records.push(...maildirHeaderRecords(state, o.header));
  if (o.uidValidity !== undefined) records.push({ type: "header-update", ...external, patches: [{ offset: 24, data: u32(o.uidValidity) }] });
  if (o.appends.length > 0) {
    records.push({ type: "append", ...external, messages: o.appends.map((a) => ({ uid: a.uid, flags: a.flags })) });
  }
  if (o.flagReplaces.length > 0) {
    const ranges = seqRanges(o.flagReplaces, (f) => `${f.add}:${f.remove}`);
    records.push({ type: "flag-update", ...external, updates: ranges.map((r) => ({ ...r.range, addFlags: r.first.add, removeFlags: r.first.remove, modseqIncFlag: 0 })) });
  }
  records.push(...keywordRecords(state, o));
  if (o.expunges.length > 0) {
    // Dovecot's sync expunges carry no GUID (observed: zero GUIDs).
    records.push({ type: "expunge-guid", ...external, expunges: [...o.expunges].sort((a, b) => a - b).map((uid) => ({ uid, guid: new Uint8Array(16) })) });
  }
  if (o.nextUid !== undefined) records.push({ type: "header-update", ...external, patches: [{ offset: 28, data: u32(o.nextUid) }] });
  return records;
}

function keywordRecords(state: IndexMapState, o: SyncOutcome): LogRecord[] {
  const byName = new Map<string, { add: SyncOutcome["keywordChanges"]; remove: SyncOutcome["keywordChanges"] }>();
  for (const ch of o.keywordChanges) {
    const entry = byName.get(ch.name) ?? { add: [], remove: [] };
    (ch.add ? entry.add : entry.remove).push(ch);
    byName.set(ch.name, entry);
  }
  o.appends.forEach((a, i) => {
    for (const name of a.keywords) {
      const entry = byName.get(name) ?? { add: [], remove: [] };
      // Appended messages take the sequence numbers after the existing ones.
      entry.add.push({ seq: state.records.count + i + 1, uid: a.uid, name, add: true });
      byName.set(name, entry);
    }
  });
  const out: LogRecord[] = [];
  for (const [name, { add, remove }] of byName) {
    for (const [modifyType, items] of [["add", add], ["remove", remove]] as const) {
      if (items.length === 0) continue;
      items.sort((a, b) => a.uid - b.uid);
      out.push({ type: "keyword-update", ...external, modifyType, name, ranges: seqRanges(items, () => "").map((r) => r.range) });
    }
  }
  return out;
}
