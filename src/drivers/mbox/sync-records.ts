/**
 * The log records that say what a sync found and did, in the order of
 * Dovecot's transaction writer (transaction-log.md §7): extension header,
 * appends, flag updates, extension records, keywords, expunges, next_uid.
 * All EXTERNAL: the mbox file already shows them. Messages whose header is
 * still lacking (sync-plan.ts) carry DIRTY and their header MD5, as after a
 * lazy Dovecot sync, so that Dovecot writes them on its next rewrite and can
 * find them meanwhile.
 */
import { MailFlag, type AppendedMessage, type FlagUpdate, type LogRecord } from "../../log/types.js";
import { fromOffsetRecordsOf, headerMd5RecordsOf, mboxHeaderRecords, type MboxSyncHeader } from "./index-ext.js";
import { PackedUpdatesBuilder } from "./packed-updates.js";
import type { MessagePlan, SyncPlan } from "./sync-plan.js";

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

/** What recording the messages needs of the sync (SyncOutcome without the plan and what comes at its end). */
export type RecordingContext = Omit<SyncOutcome, "plan" | "syncHeader">;

/** What a sync knows once every message was added. */
export interface RecordingEnd {
  /** UIDs the file no longer has. */
  readonly vanished: readonly number[];
  /** The plan's next_uid. */
  readonly nextUid: number;
  readonly syncHeader?: MboxSyncHeader;
}

/**
 * The sync transaction's records, built message by message (a first sync
 * records each message as the scan finds it): the from offsets and header
 * MD5s go straight into the records' bytes (packed-updates.ts), so nothing
 * of a message is held but its append.
 */
export class SyncRecordsBuilder {
  /**
   * The appends' UIDs and flags, in columns until records() makes their
   * objects: objects made message by message outlive many scavenges of
   * the scan's garbage, and that grew V8's young generation to 16 MiB
   * semi-spaces (+20 MiB peak RSS for a first sync of 100k messages).
   */
  private appendUids = new Uint32Array(64);
  private appendFlags = new Uint8Array(64);
  private appendCount = 0;
  private readonly flagUpdates: FlagUpdate[] = [];
  private readonly offsets = new PackedUpdatesBuilder(8);
  private readonly md5s = new PackedUpdatesBuilder(16);
  private readonly keywordAdds = new Map<string, number[]>();
  private readonly keywordResets: number[] = [];
  private readonly expunged: number[];

  constructor(private readonly o: RecordingContext) {
    this.expunged = [...(o.alsoExpunged ?? [])];
  }

  add(m: MessagePlan): void {
    const o = this.o;
    if (m.uid === 0) return;
    if (m.drop) {
      if (m.indexed) this.expunged.push(m.uid);
      return;
    }
    const upToDate = o.written.has(m.uid) || (!m.stale && !m.lacking);
    const dirty = upToDate ? 0 : MailFlag.DIRTY;
    const ix = m.indexed;
    const offset = o.offsets?.get(m.uid) ?? m.msg.fromOffset;
    if (!ix || ix.fromOffset !== offset) this.offsets.addU64(m.uid, offset);
    if (dirty && m.md5 && !(ix?.md5 && Buffer.from(ix.md5).equals(Buffer.from(m.md5)))) this.md5s.addBytes(m.uid, m.md5);
    if (!ix) {
      this.addAppend(m.uid, m.flags | dirty);
      for (const k of m.keywords) this.addKeyword(k, m.uid);
      return;
    }
    const oldFlags = ix.flags;
    const newFlags = (m.fileWins ? m.flags : oldFlags & 0x1f) | (oldFlags & ~(0x1f | MailFlag.DIRTY)) | dirty;
    const add = newFlags & ~oldFlags;
    const remove = oldFlags & ~newFlags;
    if (add !== 0 || remove !== 0) this.flagUpdates.push({ uid1: m.uid, uid2: m.uid, addFlags: add, removeFlags: remove, modseqIncFlag: 0 });
    if (m.fileWins) {
      this.keywordResets.push(m.uid);
      for (const k of m.keywords) this.addKeyword(k, m.uid);
    }
  }

  /** @returns the records, once every message was added. */
  records(end: RecordingEnd): LogRecord[] {
    const o = this.o;
    const { vanished, nextUid } = end;
    const { flagUpdates, keywordResets } = this;
    const appends: AppendedMessage[] = new Array(this.appendCount);
    for (let i = 0; i < appends.length; i++) appends[i] = { uid: this.appendUids[i], flags: this.appendFlags[i] };
    const records: LogRecord[] = [];
    if (end.syncHeader) records.push(...mboxHeaderRecords(end.syncHeader));
    if (appends.length > 0) records.push({ type: "append", ...ext, messages: appends });
    if (flagUpdates.length > 0) records.push({ type: "flag-update", ...ext, updates: flagUpdates });
    records.push(...fromOffsetRecordsOf(this.offsets));
    records.push(...headerMd5RecordsOf(this.md5s));
    if (keywordResets.length > 0) records.push({ type: "keyword-reset", ...ext, ranges: ranges(keywordResets) });
    for (const [name, uids] of this.keywordAdds) records.push({ type: "keyword-update", ...ext, modifyType: "add", name, ranges: ranges(uids) });
    const uniqueExpunged = [...new Set([...vanished, ...this.expunged])].sort((a, b) => a - b);
    if (uniqueExpunged.length > 0) records.push(expungedRecord(uniqueExpunged));
    const appendedNext = appends.length > 0 ? appends[appends.length - 1].uid + 1 : 0;
    if (nextUid > Math.max(o.stateNextUid, appendedNext)) {
      const data = new Uint8Array(4);
      new DataView(data.buffer).setUint32(0, nextUid, true);
      records.push({ type: "header-update", ...ext, patches: [{ offset: 28, data }] });
    }
    return records;
  }

  private addAppend(uid: number, flags: number): void {
    if (this.appendCount === this.appendUids.length) {
      const uids = new Uint32Array(2 * this.appendCount);
      uids.set(this.appendUids);
      this.appendUids = uids;
      const flagBytes = new Uint8Array(2 * this.appendCount);
      flagBytes.set(this.appendFlags);
      this.appendFlags = flagBytes;
    }
    this.appendUids[this.appendCount] = uid;
    this.appendFlags[this.appendCount++] = flags;
  }

  private addKeyword(name: string, uid: number): void {
    const uids = this.keywordAdds.get(name);
    if (uids) uids.push(uid);
    else this.keywordAdds.set(name, [uid]);
  }
}

/** @returns the sync transaction's records (empty when nothing is to be said). */
export function syncRecords(o: SyncOutcome): LogRecord[] {
  const builder = new SyncRecordsBuilder(o);
  for (const m of o.plan.messages) builder.add(m);
  return builder.records({ vanished: o.plan.vanished, nextUid: o.plan.nextUid, ...(o.syncHeader ? { syncHeader: o.syncHeader } : {}) });
}
