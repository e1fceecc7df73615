/**
 * The log records that say what a sync found and did, in the order of
 * Dovecot's transaction writer (transaction-log.md §7): extension header,
 * appends, flag updates, extension records, keywords, expunges, next_uid.
 * All EXTERNAL: the mbox file already shows them. Messages whose header is
 * still lacking (sync-plan.ts) carry DIRTY and their header MD5, as after a
 * lazy Dovecot sync, so that Dovecot writes them on its next rewrite and can
 * find them meanwhile.
 */
import { MailFlag, type FlagUpdate, type LogRecord } from "../../log/types.js";
import { fromOffsetRecords, headerMd5Records, mboxHeaderRecords, type MboxSyncHeader } from "./index-ext.js";
import type { SyncPlan } from "./sync-plan.js";

const ext = { external: true, sync: false } as const;

export interface SyncOutcome {
  readonly plan: SyncPlan;
  /** UIDs whose header now says their flags, keywords and X-UID. */
  readonly written: ReadonlySet<number>;
  /** New from offsets (after a rewrite); others keep the scanned ones. */
  readonly offsets?: ReadonlyMap<number, number>;
  /** The file as it is now, when the index may say it is in sync with it. */
  readonly syncHeader?: MboxSyncHeader;
  /** next_uid of the state the sync started from. */
  readonly stateNextUid: number;
  /** UIDs to expunge that the file no longer has anyway (requested by the caller). */
  readonly alsoExpunged?: readonly number[];
}

function ranges(uids: readonly number[]): Array<{ uid1: number; uid2: number }> {
  const sorted = [...uids].sort((a, b) => a - b);
  const out: Array<{ uid1: number; uid2: number }> = [];
  for (const u of sorted) {
    const last = out[out.length - 1];
    if (last && u <= last.uid2 + 1) last.uid2 = Math.max(last.uid2, u);
    else out.push({ uid1: u, uid2: u });
  }
  return out;
}

/** The record of messages the file no longer has (`uids` ascending); an mbox has no GUIDs to give. */
export function expungedRecord(uids: readonly number[]): LogRecord {
  return { type: "expunge-guid", ...ext, expunges: uids.map((uid) => ({ uid, guid: new Uint8Array(16) })) };
}

/** @returns the sync transaction's records (empty when nothing is to be said). */
export function syncRecords(o: SyncOutcome): LogRecord[] {
  const appends: Array<{ uid: number; flags: number }> = [];
  const flagUpdates: FlagUpdate[] = [];
  const offsets: Array<{ uid: number; offset: number }> = [];
  const md5s: Array<{ uid: number; md5: Uint8Array }> = [];
  const keywordAdds = new Map<string, number[]>();
  const keywordResets: number[] = [];
  const expunged: number[] = [...o.plan.vanished, ...(o.alsoExpunged ?? [])];

  for (const m of o.plan.messages) {
    if (m.uid === 0) continue;
    if (m.drop) {
      if (m.indexed) expunged.push(m.uid);
      continue;
    }
    const upToDate = o.written.has(m.uid) || (!m.stale && !m.lacking);
    const dirty = upToDate ? 0 : MailFlag.DIRTY;
    const ix = m.indexed;
    const offset = o.offsets?.get(m.uid) ?? m.msg.fromOffset;
    if (!ix || ix.fromOffset !== offset) offsets.push({ uid: m.uid, offset });
    if (dirty && m.md5 && !(ix?.md5 && Buffer.from(ix.md5).equals(Buffer.from(m.md5)))) md5s.push({ uid: m.uid, md5: m.md5 });
    if (!ix) {
      appends.push({ uid: m.uid, flags: m.flags | dirty });
      for (const k of m.keywords) keywordAdds.set(k, [...(keywordAdds.get(k) ?? []), m.uid]);
      continue;
    }
    const oldFlags = ix.flags;
    const newFlags = (m.fileWins ? m.flags : oldFlags & 0x1f) | (oldFlags & ~(0x1f | MailFlag.DIRTY)) | dirty;
    const add = newFlags & ~oldFlags;
    const remove = oldFlags & ~newFlags;
    if (add !== 0 || remove !== 0) flagUpdates.push({ uid1: m.uid, uid2: m.uid, addFlags: add, removeFlags: remove, modseqIncFlag: 0 });
    if (m.fileWins) {
      keywordResets.push(m.uid);
      for (const k of m.keywords) keywordAdds.set(k, [...(keywordAdds.get(k) ?? []), m.uid]);
    }
  }

  const records: LogRecord[] = [];
  if (o.syncHeader) records.push(...mboxHeaderRecords(o.syncHeader));
  if (appends.length > 0) records.push({ type: "append", ...ext, messages: appends });
  if (flagUpdates.length > 0) records.push({ type: "flag-update", ...ext, updates: flagUpdates });
  records.push(...fromOffsetRecords(offsets));
  records.push(...headerMd5Records(md5s));
  if (keywordResets.length > 0) records.push({ type: "keyword-reset", ...ext, ranges: ranges(keywordResets) });
  for (const [name, uids] of keywordAdds) records.push({ type: "keyword-update", ...ext, modifyType: "add", name, ranges: ranges(uids) });
  const uniqueExpunged = [...new Set(expunged)].sort((a, b) => a - b);
  if (uniqueExpunged.length > 0) records.push(expungedRecord(uniqueExpunged));
  const appendedNext = appends.length > 0 ? appends[appends.length - 1].uid + 1 : 0;
  if (o.plan.nextUid > Math.max(o.stateNextUid, appendedNext)) {
    const data = new Uint8Array(4);
    new DataView(data.buffer).setUint32(0, o.plan.nextUid, true);
    records.push({ type: "header-update", ...ext, patches: [{ offset: 28, data }] });
  }
  return records;
}
