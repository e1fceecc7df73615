/**
 * Expunging from an mbox the index is in sync with, as Dovecot's partial
 * sync does (mbox-sync.c: the file's size and mtime match, so it seeks by
 * the index's from offsets instead of reading the file from the start):
 * the messages are known from the index, not from a scan of the whole file.
 * Every message from the first expunged one on is read once, in large
 * blocks, by the in-place rewrite (in-place.ts), checked — its From_ line
 * where the index says, its X-UID the index's UID — and moved byte for
 * byte; a header is parsed only when its message is to carry padding, or
 * to take X-IMAPbase over when the first message goes. Headers come out as
 * the full sync writes them (sync-plan.ts: the file's flags and keywords).
 *
 * The scan it saves read and parsed every byte of the file (bodies are
 * searched for From_ lines): about 0.4 s of CPU for 199 MB.
 *
 * Anything else goes to the full sync (sync.ts): pending flag or keyword
 * changes, DIRTY messages (their headers lack something), every message
 * expunged (Dovecot's pseudo message), an X-IMAPbase ahead of the index's
 * next UID, a From_ line or X-UID not where the index says. A check fails
 * before the window holding that message is written, so the file is then
 * whole messages (in-place.ts) and the full sync takes it from there.
 */
import { MAIL_FLAGS_NONRECENT } from "../../log/types.js";
import type { LogRecord } from "../../log/types.js";
import { MailCorruptedError } from "../../shared/errors.js";
import type { IndexMapState } from "../../projections/state.js";
import { messageAt } from "./file-messages.js";
import { fromOffsetRecords, mboxHeaderRecords, mboxRecordReader } from "./index-ext.js";
import type { PendingChanges } from "./index-view.js";
import { rewriteInPlace, type Unit } from "./in-place.js";
import type { WriteHold } from "./mbox-file.js";
import type { ManagedFields } from "./managed-headers.js";
import { messagePiece, movedPiece } from "./pieces.js";
import { scanMbox, type MboxMessage } from "./scan.js";
import { bufferSource, FileSource } from "./source.js";
import { fileMatchesIndex, fileSyncStamp, listKeywordsInImapBase, stampedHeader } from "./sync.js";
import { expungedRecord } from "./sync-records.js";

const LF = 0x0a;
const FROM = Buffer.from("From ", "latin1");
const X_UID = Buffer.from("\nX-UID: ", "latin1");

/** A message is not where, or not what, the index says: the full sync decides. */
class NotAsIndexed extends Error {}

/**
 * @returns the X-UID in the header of `unit` (a message from its From_
 *   line), as Dovecot writes it; undefined when there is none, or the
 *   header's end is not an LF-only empty line.
 */
function xUidOf(unit: Buffer): number | undefined {
  const fromLineEnd = unit.indexOf(LF);
  const headerEnd = unit.indexOf("\n\n", fromLineEnd, "latin1");
  if (fromLineEnd < 0 || headerEnd < 0) return undefined;
  const at = unit.indexOf(X_UID, fromLineEnd);
  if (at < 0 || at >= headerEnd) return undefined;
  let uid = 0;
  let i = at + X_UID.length;
  for (; i < unit.length && unit[i] >= 0x30 && unit[i] <= 0x39; i++) uid = uid * 10 + (unit[i] - 0x30);
  return i > at + X_UID.length && unit[i] === LF ? uid : undefined;
}

/** @returns each message's unit (From_ line to the next From_ line) from the index's from offsets, or undefined when they cannot be. */
function unitsFromIndex(state: IndexMapState, fileSize: number): Unit[] | undefined {
  const records = mboxRecordReader(state);
  const n = state.records.count;
  const starts: number[] = [];
  for (let seq = 1; seq <= n; seq++) {
    const offset = records.fromOffset(seq);
    if (offset === undefined) return undefined;
    // Dovecot's from offset is the separator's LF (the file's start for the first message).
    const start = seq === 1 ? offset : offset + 1;
    if (seq === 1 ? offset !== 0 : start <= starts[starts.length - 1] || start >= fileSize) return undefined;
    starts.push(start);
  }
  return starts.map((start, i) => ({ start, end: i + 1 < n ? starts[i + 1] : fileSize }));
}

/**
 * The expunge described in the module comment.
 * @param expunge UIDs to expunge now (ones the index lacks are ignored).
 * @returns the sync's records, or undefined when the full sync must do it
 *   (the file may then be partly rewritten: whole messages, each once).
 */
export function expungeInSync(
  hold: WriteHold,
  state: IndexMapState,
  pending: PendingChanges,
  expunge: ReadonlySet<number>,
  opts: { windowBytes?: number } = {},
): LogRecord[] | undefined {
  if (hold.recovered || pending.flags === "all" || pending.flags.size > 0) return undefined;
  const stamp = fileSyncStamp(hold.fd);
  if (!fileMatchesIndex(state, stamp)) return undefined;
  const units = unitsFromIndex(state, stamp.size);
  if (!units) return undefined;
  const uidAt = (i: number) => state.records.uidAt(i);
  const drops = (i: number) => expunge.has(uidAt(i)) || pending.expunges.has(uidAt(i));
  let firstChange = 0;
  while (firstChange < units.length && !drops(firstChange)) firstChange++;
  let opener = 0;
  while (opener < units.length && drops(opener)) opener++;
  // Nothing to expunge, or everything (Dovecot's pseudo message then): the full sync knows those cases.
  if (firstChange === units.length || opener === units.length) return undefined;
  // The first message's X-IMAPbase: what the message that opens the file after the sync says, as sync-plan.ts.
  const src = new FileSource(hold.fd);
  const base = messageAt(src, 0, hold.file.path)?.imapBase;
  // An X-IMAPbase ahead of the index's next UID: the full sync logs the new next UID.
  if (!base || base.uidLast >= state.header.nextUid) return undefined;
  const keywords = [...state.keywords, ...base.keywords.filter((k) => !state.keywords.includes(k))];
  const known = new Set(keywords);
  const uidLast = state.header.nextUid - 1;
  /** The managed headers of `msg` (uid `uid`, in a unit of its own) as the full sync would write them. */
  const fieldsOf = (msg: MboxMessage, uid: number, opens: boolean): ManagedFields => ({
    uid,
    flags: msg.flags & MAIL_FLAGS_NONRECENT,
    keywords: msg.rawKeywords.every((k) => known.has(k)) ? [...new Set(msg.rawKeywords)] : [],
    recent: msg.recent,
    bodyLength: msg.endOffset - msg.bodyOffset,
    ...(opens ? { imapBase: { uidValidity: state.header.uidValidity, uidLast, keywords } } : {}),
  });

  const expunged: number[] = [];
  const last = units.length - 1;
  const pieceFor = (i: number, unit: Buffer) => {
    const uid = uidAt(i);
    const endsMessage = unit[unit.length - 1] === LF || i === last;
    if (!unit.subarray(0, FROM.length).equals(FROM) || !endsMessage || xUidOf(unit) !== uid) throw new NotAsIndexed();
    if (drops(i)) {
      expunged.push(uid);
      return undefined;
    }
    // The first message went: the one that now opens the file takes X-IMAPbase over.
    if (i === opener) {
      const msg = firstMessageOf(unit);
      return messagePiece(unit, msg, fieldsOf(msg, uid, true), true);
    }
    const whole = unit[unit.length - 1] === LF ? unit : Buffer.concat([unit, Buffer.from("\n")]);
    return movedPiece(whole, uid, () => {
      const msg = firstMessageOf(unit);
      return { msg, fields: fieldsOf(msg, uid, false) };
    });
  };
  let offsets: ReadonlyMap<number, number>;
  try {
    if (firstChange > 0) listKeywordsInImapBase(hold, src, uidLast, state.header.uidValidity, keywords);
    offsets = rewriteInPlace(hold, { units, firstChange, pieceFor, insertsBefore: () => [], ...(opts.windowBytes ? { windowBytes: opts.windowBytes } : {}) }).offsets;
  } catch (err) {
    if (!(err instanceof NotAsIndexed)) throw err;
    // Stopped between two windows: the last one written is finished, its record goes.
    hold.settle();
    return undefined;
  }
  return [
    ...mboxHeaderRecords(stampedHeader(state, hold.fd)),
    ...fromOffsetRecords([...offsets].map(([uid, offset]) => ({ uid, offset }))),
    expungedRecord(expunged),
  ];
}

/** The message `unit` holds (offsets within `unit`). */
function firstMessageOf(unit: Buffer): MboxMessage {
  let first: IteratorResult<MboxMessage>;
  try {
    first = scanMbox(bufferSource(unit)).next();
  } catch (err) {
    // No valid From_ line after all: not the message the index has there.
    if (err instanceof MailCorruptedError) throw new NotAsIndexed();
    throw err;
  }
  if (first.done) throw new NotAsIndexed();
  return first.value;
}
