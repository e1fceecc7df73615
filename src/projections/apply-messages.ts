/**
 * The records that add, change and remove messages: APPEND, FLAG_UPDATE,
 * EXPUNGE and EXPUNGE_GUID (transaction-log.md §4.1-§4.4), with the header's
 * counters and low-water marks kept the way Dovecot keeps them
 * (index-file.md §8): as they would come out per flag flip in record order,
 * though a flag update's or an expunge's range is counted once, with a row
 * by row walk only to name the error on bad counters.
 */
import type { Draft } from "immer";
import { RawFlagUpdate } from "../log/records/flag-update.js";
import { MailFlag, MAIL_FLAGS_NONRECENT, type LogRecord } from "../log/types.js";
import type { ApplyContext } from "./apply-context.js";
import { raiseHighestModseq, raiseMessageModseqs } from "./apply-modseq.js";
import { IndexHeaderFlag, type IndexBaseHeader } from "./base-header.js";
import type { RecordEditor } from "./record-store.js";
import { assert } from "../shared/errors.js";

type AppendRecord = Extract<LogRecord, { type: "append" }>;
type FlagUpdateRecord = Extract<LogRecord, { type: "flag-update" }>;
type ExpungeRecord = Extract<LogRecord, { type: "expunge" }>;
type ExpungeGuidRecord = Extract<LogRecord, { type: "expunge-guid" }>;

/** The header fields a flag flip touches, worked on as plain numbers. */
interface Counters {
  nextUid: number;
  messagesCount: number;
  seen: number;
  deleted: number;
  unseenLowwater: number;
  deletedLowwater: number;
}

/**
 * The one Counters object: a replay reads counters once per flag update
 * (hundreds of thousands), and an object each was garbage. Appliers never
 * nest, so each fills it, works on it and writes it back before the next.
 */
const scratch: Counters = { nextUid: 0, messagesCount: 0, seen: 0, deleted: 0, unseenLowwater: 0, deletedLowwater: 0 };

/** The header's counters in the shared scratch object (valid until the next call). */
function readCounters(h: IndexBaseHeader, messagesCount: number): Counters {
  const c = scratch;
  c.nextUid = h.nextUid;
  c.messagesCount = messagesCount;
  c.seen = h.seenMessagesCount;
  c.deleted = h.deletedMessagesCount;
  c.unseenLowwater = h.firstUnseenUidLowwater;
  c.deletedLowwater = h.firstDeletedUidLowwater;
  return c;
}

function writeCounters(h: Draft<IndexBaseHeader>, c: Counters): void {
  h.nextUid = c.nextUid;
  h.seenMessagesCount = c.seen;
  h.deletedMessagesCount = c.deleted;
  h.firstUnseenUidLowwater = c.unseenLowwater;
  h.firstDeletedUidLowwater = c.deletedLowwater;
}

/**
 * mail_index_header_update_counts: \Seen and \Deleted counters follow each
 * flip; reaching "all seen" / "none deleted" moves the low-water mark to
 * next_uid. Returns an error text when a counter would go out of range (the
 * state did not match its records: Dovecot marks the index corrupted).
 */
function updateCounts(c: Counters, oldFlags: number, newFlags: number): string | undefined {
  const changed = oldFlags ^ newFlags;
  if (changed & MailFlag.SEEN) {
    if (oldFlags & MailFlag.SEEN) {
      if (c.seen === 0) return "Seen counter wrong";
      c.seen--;
    } else {
      if (c.seen >= c.messagesCount) return "Seen counter wrong";
      if (++c.seen === c.messagesCount) c.unseenLowwater = c.nextUid;
    }
  }
  if (changed & MailFlag.DELETED) {
    if ((oldFlags & MailFlag.DELETED) === 0) {
      if (++c.deleted > c.messagesCount) return "Deleted counter wrong";
    } else {
      if (c.deleted === 0 || c.deleted > c.messagesCount) return "Deleted counter wrong";
      if (--c.deleted === 0) c.deletedLowwater = c.nextUid;
    }
  }
  return undefined;
}

/** mail_index_header_update_lowwaters: an unseen (or deleted) message lowers its mark. */
function updateLowwaters(c: Counters, uid: number, flags: number): void {
  if ((flags & MailFlag.SEEN) === 0 && uid < c.unseenLowwater) c.unseenLowwater = uid;
  if ((flags & MailFlag.DELETED) !== 0 && uid < c.deletedLowwater) c.deletedLowwater = uid;
}

function isInternalFlagChange(addFlags: number, removeFlags: number, modseqIncFlag: number): boolean {
  return ((addFlags | removeFlags) & MAIL_FLAGS_NONRECENT) === 0 && modseqIncFlag === 0;
}

/**
 * applyAppend's checks and counts, message by message, into `c`.
 * A function of its own: V8 then compiles this small loop, not
 * applyAppend with all it inlines (a rebuild folds two appends of every
 * message, and applyAppend compiled twice, on other threads, measured with
 * --trace-opt).
 * @returns how many messages carry DIRTY. @throws as applyAppend.
 */
function countAppended(ctx: ApplyContext, c: Counters, messages: AppendRecord["messages"]): number {
  let dirty = 0;
  const fx = ctx.effects;
  // Indexed, not for-of: a loop over every message of a big transaction runs once, mostly
  // before it is optimized, and there for-of allocates an iterator result per element.
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (m.uid < c.nextUid) throw ctx.corrupt(`Append with UID ${m.uid}, but next_uid = ${c.nextUid}`);
    fx?.append(m.uid, m.flags);
    c.messagesCount++;
    c.nextUid = m.uid + 1;
    if (m.flags & MailFlag.DIRTY) dirty++;
    updateLowwaters(c, m.uid, m.flags);
    const error = updateCounts(c, 0, m.flags);
    if (error !== undefined) throw ctx.corrupt(error);
  }
  return dirty;
}

/** APPEND: new records with final flags; uids must not go below next_uid. */
export function applyAppend(ctx: ApplyContext, record: AppendRecord): void {
  if (record.messages.length === 0) return;
  const editor = ctx.edit();
  const firstNew = editor.count;
  const c = readCounters(ctx.header, editor.count);
  const messages = record.messages;
  const dirty = countAppended(ctx, c, messages);
  // The rows after the checks, all at once: a bad record throws before any is added, and the fold is dropped.
  editor.appendMessages(messages);
  writeCounters(ctx.header, c);
  if (dirty > 0) {
    ctx.header.flags |= IndexHeaderFlag.HAVE_DIRTY;
    ctx.draft.dirtyCount += dirty;
  }
  raiseMessageModseqs(ctx, firstNew, editor.count - 1, ctx.entry.modseq);
}

/** FLAG_UPDATE: flags = (flags & ~remove) | add on every existing message of each range. */
export function applyFlagUpdate(ctx: ApplyContext, record: FlagUpdateRecord): void {
  if (record instanceof RawFlagUpdate) {
    // Updates read from the log's bytes (checked by the scan): no update objects.
    const view = record.view;
    for (let p = record.start; p < record.end; p += 12) {
      const flags = view.getUint32(p + 8, true);
      applyFlagRange(ctx, view.getUint32(p, true), view.getUint32(p + 4, true), flags & 0xff, (flags >>> 8) & 0xff, (flags >>> 16) & 0xff);
    }
    return;
  }
  for (const u of record.updates) applyFlagRange(ctx, u.uid1, u.uid2, u.addFlags, u.removeFlags, u.modseqIncFlag);
}

/** One update of a FLAG_UPDATE: the messages uid1..uid2 that exist. */
function applyFlagRange(ctx: ApplyContext, uid1: number, uid2: number, addFlags: number, removeFlags: number, modseqIncFlag: number): void {
  const records = ctx.records;
  const first = records.firstOfUids(uid1, uid2);
  if (first < 0) return;
  const last = records.lastOfUids(first, uid1, uid2);
  if (!isInternalFlagChange(addFlags, removeFlags, modseqIncFlag)) raiseMessageModseqs(ctx, first, last, ctx.entry.modseq);
  if (addFlags & MailFlag.DIRTY) ctx.header.flags |= IndexHeaderFlag.HAVE_DIRTY;
  applyFlagChange(ctx, first, last, addFlags, removeFlags);
}

/**
 * The fold of one range of one flag update: the rows' flags are set and their
 * flips counted in one pass, and the counters and low-water marks move once
 * for the range (a call and its checks per row made flag-all cost 1.4×
 * doveadm at 20k). Within one update each flag flips one way only, so they
 * come out as updateLowwaters and updateCounts row by row would. The checks
 * are made before anything is written: at once when even every row flipping
 * would keep the counters valid, else by a read-only count pass.
 */
function applyFlagChange(ctx: ApplyContext, first: number, last: number, add: number, removeFlags: number): void {
  const keep = ~removeFlags & 0xff;
  const counted = ((add | removeFlags) & (MailFlag.SEEN | MailFlag.DELETED)) !== 0;
  const editor = ctx.edit();
  const c = readCounters(ctx.header, editor.count);
  if (counted && !flipsFit(c, keep, add, last - first + 1)) {
    const f = countFlips(editor, first, last, keep, add);
    if (!countsFit(c, f.seenUp, f.seenDown, f.deletedUp, f.deletedDown)) throw ctx.corrupt(firstCountError(editor, first, last, c, keep, add, false));
  }
  // Flips counted in place (SEEN is 8, DELETED 4): one direction each per update.
  let seenUp = 0;
  let seenDown = 0;
  let deletedUp = 0;
  let deletedDown = 0;
  // Uids ascend: the first unseen (deleted) row after the change is the lowest.
  let unseenUid = -1;
  let deletedUid = -1;
  let dirtyDelta = 0;
  const rs = editor.recordSize;
  const fx = ctx.effects;
  const external = ctx.entry.record.external;
  // Locals, not property loads per row: a replay at open runs this loop once per row of
  // the range, mostly before V8 has optimized it.
  const SEEN = MailFlag.SEEN;
  const DELETED = MailFlag.DELETED;
  const DIRTY = MailFlag.DIRTY;
  const cur = editor.span(first, last);
  do {
    // The record index of leaf row i (effects only).
    const leafStart = cur.first - cur.from;
    // Consecutive rows with the same visible change, reported as one run (fx.flags).
    let runFrom = -1;
    let runTo = -1;
    let runAdd = 0;
    let runRemove = 0;
    const to = cur.to;
    for (let i = cur.from; i <= to; i++) {
      const at = i * rs;
      const oldFlags = cur.bytes[at + 4];
      const newFlags = (oldFlags & keep) | add;
      if (counted) {
        if (unseenUid < 0 && (newFlags & SEEN) === 0) unseenUid = cur.words[at >>> 2];
        if (deletedUid < 0 && (newFlags & DELETED) !== 0) deletedUid = cur.words[at >>> 2];
      }
      if (newFlags === oldFlags) continue;
      seenUp += newFlags & ~oldFlags & SEEN;
      seenDown += oldFlags & ~newFlags & SEEN;
      deletedUp += newFlags & ~oldFlags & DELETED;
      deletedDown += oldFlags & ~newFlags & DELETED;
      dirtyDelta += ((newFlags & DIRTY) >> 7) - ((oldFlags & DIRTY) >> 7);
      cur.writable();
      cur.bytes[at + 4] = newFlags;
      if (fx === undefined) continue;
      // The one definition of a visible flag change: an IMAP flag bit that flipped.
      const changed = (oldFlags ^ newFlags) & MAIL_FLAGS_NONRECENT;
      if (changed === 0) continue;
      if (runFrom >= 0 && (runTo !== i - 1 || runAdd !== (newFlags & changed) || runRemove !== (oldFlags & changed))) {
        fx.flags(leafStart + runFrom, cur.words[(runFrom * rs) >>> 2], leafStart + runTo, cur.words[(runTo * rs) >>> 2], runAdd, runRemove, external);
        runFrom = -1;
      }
      if (runFrom < 0) {
        runFrom = i;
        runAdd = newFlags & changed;
        runRemove = oldFlags & changed;
      }
      runTo = i;
    }
    if (runFrom >= 0) fx!.flags(leafStart + runFrom, cur.words[(runFrom * rs) >>> 2], leafStart + runTo, cur.words[(runTo * rs) >>> 2], runAdd, runRemove, external);
  } while (cur.next());
  if (counted) {
    foldCounts(c, seenUp >>> 3, seenDown >>> 3, deletedUp >>> 2, deletedDown >>> 2);
    if (unseenUid >= 0 && unseenUid < c.unseenLowwater) c.unseenLowwater = unseenUid;
    if (deletedUid >= 0 && deletedUid < c.deletedLowwater) c.deletedLowwater = deletedUid;
    writeCounters(ctx.header, c);
  }
  if (dirtyDelta !== 0) ctx.draft.dirtyCount += dirtyDelta;
}

/** Whether the counters stay valid even if all `rows` rows flip every \Seen and \Deleted bit the change touches. */
function flipsFit(c: Counters, keep: number, add: number, rows: number): boolean {
  const seenUp = add & MailFlag.SEEN ? rows : 0;
  const seenDown = (keep | add) & MailFlag.SEEN ? 0 : rows;
  const deletedUp = add & MailFlag.DELETED ? rows : 0;
  const deletedDown = (keep | add) & MailFlag.DELETED ? 0 : rows;
  return countsFit(c, seenUp, seenDown, deletedUp, deletedDown);
}

/** Flips of records first..last under a change, as countFlips leaves them (one object: no garbage per range). */
const flips = { seenUp: 0, seenDown: 0, deletedUp: 0, deletedDown: 0, dirtyDown: 0, lastUid: 0 };

/** Counts, without writing, what setting records first..last to (flags & keep) | add would flip, into `flips`. */
function countFlips(editor: RecordEditor, first: number, last: number, keep: number, add: number): typeof flips {
  const rs = editor.recordSize;
  // Flips counted in place (SEEN is 8, DELETED 4, DIRTY 0x80): one direction each per change.
  let seenUp = 0;
  let seenDown = 0;
  let deletedUp = 0;
  let deletedDown = 0;
  let dirtyDown = 0;
  const span = editor.span(first, last);
  do {
    const bytes = span.bytes;
    for (let i = span.from; i <= span.to; i++) {
      const oldFlags = bytes[i * rs + 4];
      const newFlags = (oldFlags & keep) | add;
      seenUp += newFlags & ~oldFlags & MailFlag.SEEN;
      seenDown += oldFlags & ~newFlags & MailFlag.SEEN;
      deletedUp += newFlags & ~oldFlags & MailFlag.DELETED;
      deletedDown += oldFlags & ~newFlags & MailFlag.DELETED;
      dirtyDown += oldFlags & ~newFlags & MailFlag.DIRTY;
    }
    // Uids ascend: the range's last is its highest.
    flips.lastUid = span.words[(span.to * rs) >>> 2];
  } while (span.next());
  flips.seenUp = seenUp >>> 3;
  flips.seenDown = seenDown >>> 3;
  flips.deletedUp = deletedUp >>> 2;
  flips.deletedDown = deletedDown >>> 2;
  flips.dirtyDown = dirtyDown >>> 7;
  return flips;
}

/**
 * Whether updateCounts row by row would keep the counters valid for `up`/`down`
 * rows gaining/losing \Seen and \Deleted (at most one of each pair non-zero:
 * a change flips one way). A counter moving one way is valid through every
 * step exactly when it is at the end, so the checks are made once.
 */
function countsFit(c: Counters, seenUp: number, seenDown: number, deletedUp: number, deletedDown: number): boolean {
  if (seenUp > 0 && c.seen + seenUp > c.messagesCount) return false;
  if (seenDown > c.seen) return false;
  if (deletedUp > 0 && c.deleted + deletedUp > c.messagesCount) return false;
  return deletedDown === 0 || (deletedDown <= c.deleted && c.deleted <= c.messagesCount);
}

/** updateCounts for many rows at once, once countsFit said they fit. */
function foldCounts(c: Counters, seenUp: number, seenDown: number, deletedUp: number, deletedDown: number): void {
  c.seen += seenUp - seenDown;
  if (seenUp > 0 && c.seen === c.messagesCount) c.unseenLowwater = c.nextUid;
  c.deleted += deletedUp - deletedDown;
  if (deletedDown > 0 && c.deleted === 0) c.deletedLowwater = c.nextUid;
}

/** EXPUNGE (EXTERNAL only; a request changes nothing): remove every existing message in the ranges. */
export function applyExpunge(ctx: ApplyContext, record: ExpungeRecord): void {
  if (!record.external) {
    // The state does not change, but the backend has been asked to expunge what exists.
    const fx = ctx.effects;
    if (fx === undefined) return;
    for (const r of record.ranges) {
      const range = ctx.records.rangeOfUids(r.uid1, r.uid2);
      if (range !== undefined) fx.expungeRequest(ctx.records.uidAt(range[0]), ctx.records.uidAt(range[1]));
    }
    return;
  }
  const ranges: Array<[number, number]> = [];
  for (const r of record.ranges) {
    const range = ctx.records.rangeOfUids(r.uid1, r.uid2);
    if (range !== undefined) ranges.push(range);
  }
  expungeIndexes(ctx, ranges);
}

/** EXPUNGE_GUID (EXTERNAL only): like EXPUNGE, one uid per entry; the GUID is not checked. */
export function applyExpungeGuid(ctx: ApplyContext, record: ExpungeGuidRecord): void {
  if (!record.external) {
    const fx = ctx.effects;
    if (fx === undefined) return;
    for (const e of record.expunges) {
      if (ctx.records.indexOfUid(e.uid) >= 0) fx.expungeRequest(e.uid, e.uid, e.guid);
    }
    return;
  }
  // The uids in order (entries mostly come so: a mass expunge's, a purge's, one per map
  // record), their rows found in one walk instead of a search per entry (issue #11).
  const expunges = record.expunges;
  const uids = new Uint32Array(expunges.length);
  let ascending = true;
  for (let k = 0; k < expunges.length; k++) {
    uids[k] = expunges[k].uid;
    if (k > 0 && uids[k] < uids[k - 1]) ascending = false;
  }
  if (!ascending) uids.sort();
  expungeIndexes(ctx, rowRangesOfUids(ctx.records, uids));
}

/**
 * The row ranges holding `uids` (ascending; uids the records lack are
 * skipped). A run of consecutive uids whose first and last rows are that
 * far apart holds every uid between them (uids are unique and ascending in
 * the rows): it is found with two lookups instead of a visit per row
 * (issue #11: a purge expunges thousands of map uids in a row, and so does
 * a mass expunge of a mailbox). Other runs are visited row by row.
 */
function rowRangesOfUids(records: ApplyContext["records"], uids: Uint32Array): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  let last: [number, number] | undefined;
  const addRow = (index: number): void => {
    // Extend the last range rather than adding one per entry for expungeIndexes to merge.
    if (last !== undefined && last[1] + 1 === index) last[1] = index;
    else ranges.push((last = [index, index]));
  };
  // Uids not in a run found whole wait here, visited in one walk per stretch (a walk steps row to row).
  let pending = 0;
  const visitPending = (upTo: number): void => {
    if (upTo > pending) records.visitUids(uids.subarray(pending, upTo), (_bytes, _words, _offset, _k, index) => addRow(index));
  };
  let start = 0;
  while (start < uids.length) {
    let end = start + 1;
    while (end < uids.length && uids[end] === uids[end - 1] + 1) end++;
    if (end - start > 1) {
      const first = records.indexOfUid(uids[start]);
      const lastRow = first + (end - start - 1);
      if (first >= 0 && lastRow < records.count && records.uidAt(lastRow) === uids[end - 1]) {
        visitPending(start);
        if (last !== undefined && last[1] + 1 === first) last[1] = lastRow;
        else ranges.push((last = [first, lastRow]));
        pending = end;
      }
    }
    start = end;
  }
  visitPending(uids.length);
  return ranges;
}

/**
 * Lowers the counters for expunging records first..last, as updateCounts
 * row by row would (each row's flags going to 0), but counted first and
 * applied once (issue #11: a call and its checks per expunged row).
 * @returns the number of DIRTY rows, or -1 (counters untouched) when some
 *   row would break a counter or lies past next_uid: firstCountError then
 *   names it.
 */
function countExpunged(editor: RecordEditor, first: number, last: number, c: Counters): number {
  const f = countFlips(editor, first, last, 0, 0);
  if (f.lastUid >= c.nextUid || !countsFit(c, 0, f.seenDown, 0, f.deletedDown)) return -1;
  foldCounts(c, 0, f.seenDown, 0, f.deletedDown);
  return f.dirtyDown;
}

/**
 * The error of the first row of first..last that breaks a counter when its
 * flags become (flags & keep) | add: updateCounts row by row on a copy of
 * `c`. An expunge (`expunging`, keep and add 0) also rejects a uid past next_uid.
 */
function firstCountError(editor: RecordEditor, first: number, last: number, c: Counters, keep: number, add: number, expunging: boolean): string {
  const copy = { ...c };
  for (let index = first; index <= last; index++) {
    const row = editor.row(index);
    const uid = row.words[row.offset >>> 2];
    const oldFlags = row.bytes[row.offset + 4];
    const error = expunging && uid >= copy.nextUid ? `uid ${uid} >= next_uid ${copy.nextUid}` : updateCounts(copy, oldFlags, (oldFlags & keep) | add);
    if (error !== undefined) return error;
  }
  assert(false, `no row of records ${first}..${last} breaks a counter`);
}

/** Sorts and merges index ranges (entries may come in any order), then expunges them. */
function expungeIndexes(ctx: ApplyContext, ranges: Array<[number, number]>): void {
  if (ranges.length === 0) return;
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const r of ranges) {
    const prev = merged[merged.length - 1];
    if (prev !== undefined && r[0] <= prev[1] + 1) prev[1] = Math.max(prev[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  const editor = ctx.edit();
  const c = readCounters(ctx.header, editor.count);
  let dirty = 0;
  for (const [first, last] of merged) {
    const dirtyHere = countExpunged(editor, first, last, c);
    if (dirtyHere < 0) throw ctx.corrupt(firstCountError(editor, first, last, c, 0, 0, true));
    dirty += dirtyHere;
    // Dovecot lowers messages_count range by range, and the next range's checks see it.
    c.messagesCount -= last - first + 1;
  }
  // UIDs are read before the rows go; the effects are emitted once nothing can throw.
  const fx = ctx.effects;
  const gone = fx === undefined ? undefined : merged.map(([first, last]) => [editor.uidAt(first), editor.uidAt(last)] as const);
  editor.expunge(merged);
  writeCounters(ctx.header, c);
  if (dirty > 0) ctx.draft.dirtyCount -= dirty;
  raiseHighestModseq(ctx, ctx.entry.modseq);
  if (fx !== undefined && gone !== undefined) for (const [uid1, uid2] of gone) fx.expunge(uid1, uid2);
}
