/**
 * Syncing an mbox file with its index, under the write hold (dotlock +
 * fcntl), the two ways Dovecot's mbox sync does:
 *
 * - quick: the file is as the index last saw it (size and mtime match the
 *   `mbox` header) and only flag/keyword requests are pending: each such
 *   message is found at its from offset, checked (X-UID or header MD5) and
 *   its header rewritten in place within its padding;
 * - full: the file changed, a check failed, a header does not fit, or
 *   something is to be expunged: the whole file is scanned, matched to the
 *   index (reconcile.ts, sync-plan.ts), stale headers are written in place
 *   when all fit, otherwise the file is rewritten in place (in-place.ts).
 *
 * Both return the records that bring the index in line (sync-records.ts),
 * with the file's new size and mtime in the `mbox` header.
 */
import * as fs from "node:fs";
import type { LogRecord } from "../../log/types.js";
import { MAIL_FLAGS_NONRECENT, MailFlag } from "../../log/types.js";
import { lookupUid } from "../../projections/read.js";
import type { IndexMapState } from "../../projections/state.js";
import { headerBlock, isSameMessage, messageAt, scanFile } from "./file-messages.js";
import { fromOffsetOf, headerMd5Of, mboxHeaderRecords, newMboxSyncHeader, readMboxSyncHeader, type MboxSyncHeader } from "./index-ext.js";
import { indexedMessages, type IndexedMessage, type PendingChanges } from "./index-view.js";
import { rebuildHeader, type ManagedFields } from "./managed-headers.js";
import type { WriteHold } from "./mbox-file.js";
import { formatPseudoMessage, relistPseudoImap } from "./pseudo.js";
import { repairInterruptedTrim, rewriteInPlace, writeHeaderInPlace, type InPlacePlan } from "./in-place.js";
import { bytesPiece, messagePiece, type Piece } from "./pieces.js";
import { FileSource, type ByteSource } from "./source.js";
import { MboxUidReconciler } from "./reconcile.js";
import { scanMbox, type MboxMessage } from "./scan.js";
import { lazyMd5, planMessage, planSync, syncKeywords, uidInfoOf, type MessagePlan, type MessagePlanContext, type SyncPlan } from "./sync-plan.js";
import { SyncRecordsBuilder, syncRecords } from "./sync-records.js";

/** The file's size and mtime as the `mbox` header stores them. */
export function fileSyncStamp(fd: number): { size: number; mtimeSecs: number } {
  const st = fs.fstatSync(fd);
  return { size: st.size, mtimeSecs: Math.floor(st.mtimeMs / 1000) };
}

/** @returns the state's `mbox` header, or a new one (fresh GUID) when the index has none yet. */
export function syncHeaderOf(state: IndexMapState): MboxSyncHeader {
  const h = readMboxSyncHeader(state);
  return h && h.mailboxGuid.some((b) => b !== 0) ? h : { ...(h ?? newMboxSyncHeader()), mailboxGuid: newMboxSyncHeader().mailboxGuid };
}

/** @returns true when the file is as the index last saw it. */
export function fileMatchesIndex(state: IndexMapState, stamp: { size: number; mtimeSecs: number }): boolean {
  const h = readMboxSyncHeader(state);
  return h !== undefined && h.syncSize === stamp.size && h.syncMtime === stamp.mtimeSecs && h.mailboxGuid.some((b) => b !== 0);
}

/**
 * The `mbox` header for the file as it is now. Its dirty flag stays SET:
 * that makes Dovecot check a message's X-UID (or MD5) at its from offset
 * before trusting it (mbox-file.c mbox_file_seek), so that should the next
 * rewrite be killed midway — the file whole, but messages moved and their
 * offsets not logged — Dovecot quietly resyncs instead of reporting the
 * offsets "invalid" and the mbox "corrupted" (observed without the flag).
 */
export function stampedHeader(state: IndexMapState, fd: number): MboxSyncHeader {
  const stamp = fileSyncStamp(fd);
  return { ...syncHeaderOf(state), syncSize: stamp.size, syncMtime: stamp.mtimeSecs, dirtyFlag: 1 };
}

function sameKeywords(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((k) => b.includes(k));
}

/** X-IMAPbase for the file's first message after a sync. */
function imapBaseFor(state: IndexMapState, uidLast: number, keywords: readonly string[]): NonNullable<ManagedFields["imapBase"]> {
  return { uidValidity: state.header.uidValidity, uidLast, keywords };
}

/**
 * The quick sync (see the module comment).
 * @returns the records, or undefined when a full sync is needed.
 */
export function quickSync(hold: WriteHold, state: IndexMapState, pending: PendingChanges): LogRecord[] | undefined {
  if (pending.flags === "all" || pending.expunges.size > 0) return undefined;
  const src = new FileSource(hold.fd);
  const known = new Set(state.keywords);
  const writes: Array<{ msg: MboxMessage; header: Buffer }> = [];
  const clean: number[] = [];
  for (const uid of [...pending.flags].sort((a, b) => a - b)) {
    const r = lookupUid(state, uid);
    if (!r) continue;
    const offset = fromOffsetOf(r);
    const md5 = headerMd5Of(r);
    const ix: IndexedMessage = { uid, flags: r.flags, keywords: r.keywords, ...(offset !== undefined ? { fromOffset: offset } : {}), ...(md5 ? { md5 } : {}) };
    const msg = offset === undefined ? undefined : messageAt(src, offset, hold.file.path);
    if (!msg || !isSameMessage(src, msg, ix)) return undefined;
    const keywordsOk = msg.rawKeywords.every((k) => known.has(k));
    const fileKeywords = keywordsOk ? [...new Set(msg.rawKeywords)] : [];
    const flags = r.flags & MAIL_FLAGS_NONRECENT;
    const flagsMatch = (msg.flags & MAIL_FLAGS_NONRECENT) === flags && sameKeywords(fileKeywords, r.keywords);
    const complete = keywordsOk && msg.rawUid === uid;
    // A header that only lacks its X-UID waits for the next rewrite (lazy, as Dovecot).
    if (flagsMatch && !complete) continue;
    if (!flagsMatch) {
      const block = headerBlock(src, msg);
      const header = rebuildHeader(
        block,
        {
          uid,
          flags,
          keywords: r.keywords,
          recent: msg.recent,
          bodyLength: msg.endOffset - msg.bodyOffset,
          ...(offset === 0 ? { imapBase: imapBaseFor(state, state.header.nextUid - 1, state.keywords) } : {}),
        },
        block.length,
      );
      if (!header) return undefined;
      writes.push({ msg, header });
    }
    if (r.flags & MailFlag.DIRTY) clean.push(uid);
  }
  for (const w of writes) writeHeaderInPlace(hold, w.msg, w.header);
  if (writes.length > 0) {
    if (!writes.some((w) => w.msg.fromOffset === 0)) listKeywordsInImapBase(hold, src, state.header.nextUid - 1, state.header.uidValidity, state.keywords);
    hold.syncData();
  }
  const records: LogRecord[] = [...mboxHeaderRecords(stampedHeader(state, hold.fd))];
  if (clean.length > 0) {
    records.push({
      type: "flag-update",
      external: true,
      sync: false,
      updates: clean.map((uid) => ({ uid1: uid, uid2: uid, addFlags: 0, removeFlags: MailFlag.DIRTY, modseqIncFlag: 0 })),
    });
  }
  return records;
}

export interface FullSyncOptions {
  /** UIDs to expunge now (the file is rewritten). */
  readonly expunge?: ReadonlySet<number>;
  /** Messages saved earlier in the same transaction, not in the state yet. */
  readonly extraIndexed?: readonly IndexedMessage[];
  /** Window of an in-place rewrite (in-place.ts; default 8 MiB). */
  readonly windowBytes?: number;
}

/** The full sync (see the module comment). @returns the records. */
export function fullSync(hold: WriteHold, state: IndexMapState, pending: PendingChanges, opts: FullSyncOptions = {}): LogRecord[] {
  const nothingIndexed = state.records.count === 0 && (opts.extraIndexed ?? []).length === 0;
  if (nothingIndexed && (opts.expunge ?? new Set()).size === 0 && pending.expunges.size === 0) return firstSync(hold, state);
  // A command's first sync of an unindexed file (firstSync, under the catch-up's lock) scanned it just before,
  // but kept no message (its memory bound) and let the lock go: a change that needs a rewrite (a header that
  // must grow) scans again here, under this lock, for the offsets the rewrite moves.
  let { src, messages } = scanFile(hold.fd, hold.file.path);
  if (repairInterruptedTrim(hold.fd, messages.at(-1), src.size)) ({ src, messages } = scanFile(hold.fd, hold.file.path));
  const indexed = [...indexedMessages(state), ...(opts.extraIndexed ?? [])].sort((a, b) => a.uid - b.uid);
  const plan = planSync({ state, indexed, pending, expunge: opts.expunge ?? new Set(), src, messages });
  const written = new Set<number>();
  let offsets: ReadonlyMap<number, number> | undefined;

  let rewrite = plan.messages.some((m) => m.drop);
  const inPlace: Array<{ msg: MboxMessage; header: Buffer; uid: number }> = [];
  if (!rewrite) {
    for (const m of plan.messages) {
      if (!m.stale) continue;
      const block = headerBlock(src, m.msg);
      const header = rebuildHeader(block, managedFields(state, plan, m, m.msg.fromOffset === 0), block.length);
      if (!header) {
        rewrite = true;
        break;
      }
      inPlace.push({ msg: m.msg, header, uid: m.uid });
    }
  }
  if (rewrite) {
    const layout = inPlaceLayout(state, plan, src);
    if (layout.plan.firstChange > 0) listKeywordsInImapBase(hold, src, plan.nextUid - 1, state.header.uidValidity, plan.keywords);
    offsets = rewriteInPlace(hold, { ...layout.plan, ...(opts.windowBytes ? { windowBytes: opts.windowBytes } : {}) }).offsets;
    for (const uid of layout.rewritten) written.add(uid);
  } else {
    for (const w of inPlace) {
      writeHeaderInPlace(hold, w.msg, w.header);
      written.add(w.uid);
    }
    if (inPlace.length > 0) {
      if (!inPlace.some((w) => w.msg.fromOffset === 0)) listKeywordsInImapBase(hold, src, plan.nextUid - 1, state.header.uidValidity, plan.keywords);
      hold.syncData();
    }
  }
  return syncRecords({
    plan,
    written,
    ...(offsets ? { offsets } : {}),
    syncHeader: stampedHeader(state, hold.fd),
    stateNextUid: state.header.nextUid,
  });
}

/**
 * The full sync of a file the index has no message of (its first sync, as
 * a first import's source): nothing is expunged or stale, so nothing is
 * written to the file, and each message is planned and recorded as the
 * scan finds it, then let go — the scan, the plan and the records of all
 * of them at once held ~90 MiB at 100k messages (issue #11, goal 5a). The
 * same decisions (planMessage) and records (SyncRecordsBuilder) as the
 * general path, so the same transaction.
 */
function firstSync(hold: WriteHold, state: IndexMapState): LogRecord[] {
  const src = new FileSource(hold.fd);
  const reconciler = new MboxUidReconciler([], state.header.nextUid);
  const builder = new SyncRecordsBuilder({ written: new Set(), stateNextUid: state.header.nextUid });
  let ctx: MessagePlanContext | undefined;
  let last: MboxMessage | undefined;
  for (const msg of scanMbox(src, { path: hold.file.path })) {
    // The mailbox's keywords need the first message's X-IMAPbase.
    ctx ??= { indexed: [], pending: { flags: new Set(), expunges: new Set(), any: false }, expunge: new Set(), known: new Set(syncKeywords(state, msg.imapBase)) };
    const md5Of = lazyMd5(src, msg);
    builder.add(planMessage(ctx, msg, reconciler.next(uidInfoOf(msg, last === undefined), md5Of), md5Of));
    last = msg;
  }
  // As the general path: a trim a rewrite left half done is finished first, and the file read again.
  if (repairInterruptedTrim(hold.fd, last, src.size)) return firstSync(hold, state);
  const rec = reconciler.finish();
  return builder.records({ vanished: [], nextUid: rec.nextUid, syncHeader: stampedHeader(state, hold.fd) });
}

/**
 * Adds keywords the first message's X-IMAPbase (the pseudo message's
 * X-IMAP) does not list yet, in place when its padding allows (Dovecot,
 * reading the file without its index, ignores an X-Keywords naming a keyword
 * that list lacks). Best effort, as Dovecot's own imapbase_rewrite: a list
 * that does not fit waits for the next rewrite of that message.
 * @returns whether the list now holds every one of `keywords`.
 */
export function listKeywordsInImapBase(hold: WriteHold, src: ByteSource, uidLast: number, uidValidity: number, keywords: readonly string[]): boolean {
  const first = messageAt(src, 0, "");
  const base = first?.imapBase;
  if (!first || !base || (!first.pseudo && first.rawUid === undefined)) return false;
  if (keywords.every((k) => base.keywords.includes(k))) return true;
  const block = headerBlock(src, first);
  const imapBase = { uidValidity, uidLast: Math.max(uidLast, base.uidLast), keywords: [...base.keywords, ...keywords.filter((k) => !base.keywords.includes(k))] };
  const header = first.pseudo
    ? relistPseudoImap(block, imapBase.uidValidity, imapBase.uidLast, imapBase.keywords)
    : rebuildHeader(
        block,
        { uid: first.rawUid!, flags: first.flags & MAIL_FLAGS_NONRECENT, keywords: first.rawKeywords, recent: first.recent, bodyLength: first.endOffset - first.bodyOffset, imapBase },
        block.length,
      );
  if (header) writeHeaderInPlace(hold, first, header);
  return header !== undefined;
}

function managedFields(state: IndexMapState, plan: SyncPlan, m: MessagePlan, first: boolean): ManagedFields {
  return {
    uid: m.uid,
    flags: m.flags,
    keywords: m.keywords,
    recent: m.recent,
    bodyLength: m.msg.endOffset - m.msg.bodyOffset,
    ...(first ? { imapBase: imapBaseFor(state, plan.nextUid - 1, plan.keywords) } : {}),
  };
}

/**
 * The rewrite of the file from its first change on (in-place.ts): kept
 * messages in order; the first real message carries X-IMAPbase; headers
 * that are stale — and, from the first change on, lacking ones — are
 * regenerated, the others kept byte for byte; an mbox left without messages
 * gets Dovecot's pseudo message.
 * @returns the plan, and the UIDs whose headers it writes completely.
 */
function inPlaceLayout(state: IndexMapState, plan: SyncPlan, src: ByteSource): { plan: InPlacePlan; rewritten: number[] } {
  const msgs = plan.messages;
  const units = msgs.map((m, i) => ({ start: m.msg.fromLineOffset, end: i + 1 < msgs.length ? msgs[i + 1].msg.fromLineOffset : src.size }));
  const pseudo = () => bytesPiece(formatPseudoMessage(state.header.uidValidity, plan.nextUid - 1, plan.keywords));
  const firstKept = msgs.findIndex((m) => !m.drop);
  const anyReal = msgs.some((m) => !m.drop && m.uid !== 0);
  // The message that will open the file needs X-IMAPbase; unless it already opened it, that is a change.
  const opener = firstKept >= 0 && msgs[firstKept].uid !== 0 ? firstKept : -1;
  let firstChange = msgs.findIndex((m, i) => m.drop || m.stale || (i === opener && i !== 0));
  if (!anyReal) firstChange = 0;
  if (firstChange < 0) firstChange = msgs.length;
  const rewritten: number[] = [];
  const pieceFor = (i: number, unit: Buffer): Piece | undefined => {
    const m = msgs[i];
    if (m.drop) return undefined;
    if (m.uid === 0) return i === firstKept ? pseudo() : undefined;
    const first = i === opener;
    const rewrite = m.stale || m.lacking || (first && i !== 0);
    if (rewrite) rewritten.push(m.uid);
    return messagePiece(unit, m.msg, managedFields(state, plan, m, first), rewrite);
  };
  const insertsBefore = (i: number): Piece[] => (i === 0 && !anyReal && (firstKept < 0 || msgs[firstKept].uid !== 0) ? [pseudo()] : []);
  return { plan: { units, firstChange, pieceFor, insertsBefore }, rewritten };
}
