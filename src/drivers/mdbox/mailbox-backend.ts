/**
 * One mdbox mailbox: its index (`dbox-Mails/dovecot.index*`, with INDEX=
 * `<index>/mailboxes/<name>/dovecot.index*`) holds only
 * records — `mdbox` {map_uid, save_date} and `guid` per message, the
 * `mdbox-hdr` header — while the message data lives in the storage's m.N
 * files, found through the map.
 */
import * as path from "node:path";
import { AssertionFailure, IndexCorruptedError, MailCorruptedError, MailstoreError } from "../../shared/errors.js";
import type { ExpungeGuid, LogRecord } from "../../log/types.js";
import { extension, extensionHeader, extRecordAt, seqOfUid } from "../../projections/read.js";
import type { IndexMapState } from "../../projections/state.js";
import { DboxMessageReader, TransientReadWindow } from "../dbox/files.js";
import { generateGuid128, generateMessageGuid, guid128StringUnlessEmpty, guid128ToString, messageGuid128 } from "../dbox/guid.js";
import { toLfLineEndings } from "../dbox/message-body.js";
import { readDboxMetadata } from "../dbox/metadata.js";
import type { DboxMessage } from "../dbox/file-format.js";
import type { CommitIntent, MailboxBackend, MessageReaderOptions, NewMessage, PreparedSave, SaveStage, StorageLogAppend, StoredMessageInfo } from "../driver.js";
import { storageNameOf, type MdboxContext } from "./context.js";
import {
  decodeMdboxHeader, decodeMdboxRecordAt, GUID_EXT_NAME, guidRecordRecords, initialMailboxRecords,
  MDBOX_HDR_EXT_NAME, mdboxMapUidAt, mdboxHeaderRecords, mdboxRecordOffset, mdboxRecordRecords, type MdboxMailRecord,
} from "./mailbox-format.js";
import type { MapEntry } from "../../projections/mdbox-map-view.js";
import { releaseMapUids, saveToMap, type SaveItem } from "./save.js";
import { MdboxSaveStage } from "./save-stage.js";

/** A message of this mailbox, resolved through the map. */
export interface ResolvedMessage {
  readonly uid: number;
  /** 1-based, in the state it was resolved in. */
  readonly seq: number;
  readonly record: MdboxMailRecord;
  readonly entry: MapEntry;
}

/** The MailboxBackend of one mdbox mailbox (see the module comment). */
export class MdboxMailboxBackend implements MailboxBackend {
  readonly indexPrefix: string;
  readonly keepsIndexBackup = true;
  /** Metadata `B` of messages saved here. */
  readonly storageName: string;
  /** Keeps the last m.N read open: a fetch reads mostly consecutive messages of a file. */
  private readonly reader = new DboxMessageReader();
  /** Where the `mdbox` record is in a row of the last state resolved in (-1: none), looked up once for a fetch's messages of one state. */
  private mdboxRecordsOf: { readonly state: IndexMapState; readonly at: number } | undefined;

  constructor(readonly name: string, private readonly ctx: MdboxContext) {
    this.indexPrefix = ctx.paths.indexPrefix(name);
    this.storageName = storageNameOf(name);
  }

  /**
   * Dovecot locks the map before the mailbox (mdbox-save.c) when a commit
   * changes it: saves, copies and expunges take the locks in that order. A
   * flag or keyword change never touches the storage-wide map, so it does
   * not wait for (or block) other mailboxes' saves.
   */
  withCommitLocks<T>(fn: () => Promise<T>, intent: CommitIntent = { changesMessages: true }): Promise<T> {
    // The map records the commit writes (refcounts of its saves, copies, expunges) are noted for its hooks (storageLogAppends);
    // a scope of its own for a flag change too, so that one made inside a purge or altmove never reports theirs.
    const collect = async (releaseLock?: () => Promise<void>) => (await this.ctx.map.collectAppends(fn, releaseLock)).value;
    return intent.changesMessages ? this.ctx.map.holdLock(collect) : collect();
  }

  storageLogAppends(): readonly StorageLogAppend[] {
    return this.ctx.map.appendsInScope();
  }

  /** The map lock this commit took (withCommitLocks), let go before the commit ends; the mailbox's log lock stays. */
  releaseStorageLocks(): Promise<void> {
    return this.ctx.map.releaseLockOfScope();
  }

  /** The map must exist first: the mailbox header repeats its uid_validity (mdbox_write_index_header). */
  initialRecords(uidValidity: number): LogRecord[] {
    this.ctx.paths.makeIndexDirs(path.dirname(this.indexPrefix));
    const map = this.ctx.map.open();
    return initialMailboxRecords({ mapUidValidity: map.uidValidity, mailboxGuid: generateGuid128(), flags: 0 }, uidValidity);
  }

  /** Message data is written into m.N as it is staged; the commit syncs it and records it in the map. */
  openSaveStage(): MdboxSaveStage {
    return new MdboxSaveStage(this.ctx, this.storageName);
  }

  /**
   * Appends the data (or, for a copy of a message of this storage, raises
   * the source's refcount), commits the map, and returns the mailbox
   * records: `mdbox` {map_uid, save_date} and `guid` for each new uid.
   */
  async saveMessages(state: IndexMapState, messages: readonly NewMessage[], uids: readonly number[], stage?: SaveStage): Promise<PreparedSave> {
    if (stage !== undefined && !(stage instanceof MdboxSaveStage)) throw new AssertionFailure("mdbox saveMessages: a stage of another format");
    const map = this.ctx.map.open();
    const headerRecords = this.checkHeader(state, map.uidValidity);
    const now = Math.floor(Date.now() / 1000);
    const items: SaveItem[] = [];
    const staged = stage?.count ?? 0;
    for (let i = 0; i < staged; i++) items.push({ kind: "placed", ...stage!.at(i) });
    for (let i = staged; i < messages.length; i++) {
      const m = messages[i];
      const fresh = { body: toLfLineEndings(m.body), guid: m.guid ?? generateMessageGuid(), receivedTime: m.receivedTime ?? now };
      const src = await this.sharedSource(m);
      const isCopy = src !== undefined && src.mapUidValidity === map.uidValidity &&
        (m.guid === undefined || m.guid === src.guid) &&
        (m.receivedTime === undefined || src.receivedTime === undefined || m.receivedTime === src.receivedTime);
      items.push(isCopy ? { kind: "copy", mapUid: src.mapUid, fallback: { ...fresh, guid: src.guid } } : { kind: "new", ...fresh });
    }
    const mapUids = await saveToMap(this.ctx, items, { origMailbox: this.storageName, nested: true, session: stage?.session });
    const records = [
      ...headerRecords,
      ...mdboxRecordRecords(uids.map((uid, i) => ({ uid, mapUid: mapUids[i], saveDate: now }))),
      ...guidRecordRecords(uids.map((uid, i) => ({ uid, guid128: messageGuid128(guidOf(items[i])) }))),
    ];
    return {
      records,
      commit: async () => undefined,
      // The mailbox never recorded them: give back the references the map gave out.
      rollback: async () => void (await releaseMapUids(this.ctx, mapUids, { nested: false })),
    };
  }

  /**
   * Lowers the refcounts in the map (EXT_ATOMIC_INC −1, under the map lock),
   * then returns the EXTERNAL expunges, which carry each message's GUID as
   * Dovecot's do. The data stays in m.N until a purge.
   */
  async expungeMessages(state: IndexMapState, uids: readonly number[]): Promise<LogRecord[]> {
    const mapUids: number[] = [];
    const mdboxAt = mdboxRecordOffset(state);
    const guidExt = extension(state, GUID_EXT_NAME);
    const guidSize = Math.min(guidExt?.recordSize ?? 0, 16);
    const guidAt = guidExt?.recordOffset ?? 0;
    // The GUIDs copied into one buffer, each a view of it: not an ArrayBuffer per message (issue #11).
    const guids = new Uint8Array(uids.length * 16);
    // A 16-byte field at a 4-byte offset (as Dovecot lays it out) is copied as four words.
    const guidWords = guidSize === 16 && (guidAt & 3) === 0 ? new Uint32Array(guids.buffer) : undefined;
    const expunges: ExpungeGuid[] = new Array(uids.length);
    // The rows in uid order, read in place: no search or row object per message (issue #11).
    state.records.visitUids(uids, (bytes, words, offset, k) => {
      const mapUid = mdboxAt < 0 ? 0 : mdboxMapUidAt(bytes, offset + mdboxAt);
      if (mapUid !== 0) mapUids.push(mapUid);
      const to = k * 16;
      if (guidWords !== undefined) {
        const from = (offset + guidAt) >>> 2;
        const w = k * 4;
        guidWords[w] = words[from];
        guidWords[w + 1] = words[from + 1];
        guidWords[w + 2] = words[from + 2];
        guidWords[w + 3] = words[from + 3];
      } else {
        for (let i = 0; i < guidSize; i++) guids[to + i] = bytes[offset + guidAt + i];
      }
      expunges[k] = { uid: uids[k], guid: guids.subarray(to, to + 16) };
    });
    // A uid the state does not have: an all-zero GUID.
    for (let k = 0; k < uids.length; k++) expunges[k] ??= { uid: uids[k], guid: guids.subarray(k * 16, k * 16 + 16) };
    if (mapUids.length > 0) await releaseMapUids(this.ctx, mapUids, { nested: true });
    return [{ type: "expunge-guid", external: true, sync: false, expunges }];
  }

  async readMessage(state: IndexMapState, uid: number): Promise<Uint8Array> {
    return this.readStoredWith(state, uid, this.readBody).message.body;
  }

  /** readMessage without a promise: an m.N read is synchronous (see DboxMessageReader); `transient`: through a window of this reader's own (TransientReadWindow). */
  messageReader(state: IndexMapState, options: MessageReaderOptions = {}): (uid: number) => Uint8Array {
    if (!options.transient) return (uid) => this.readStoredWith(state, uid, this.readBody).message.body;
    const window = new TransientReadWindow();
    const readBody = (file: string, entry: MapEntry) => this.reader.readBody(file, entry.offset, entry.size, this.ctx.map.state, window);
    return (uid) => this.readStoredWith(state, uid, readBody).message.body;
  }

  /** The body only: its metadata block is not decoded. */
  private readonly readBody = (file: string, entry: MapEntry) => this.reader.readBody(file, entry.offset, entry.size, this.ctx.map.state);

  /**
   * What a copy of `m` can share when it copies a message of this storage
   * (NewMessage.copyOf): its map record, GUID and received time.
   * @returns undefined when `m` is no copy, or one from another storage, or its source is gone.
   */
  private async sharedSource(m: NewMessage): Promise<{ mapUidValidity: number; mapUid: number; guid: string; receivedTime: number | undefined } | undefined> {
    const origin = m.copyOf;
    if (!(origin?.backend instanceof MdboxMailboxBackend) || origin.backend.ctx.paths.root !== this.ctx.paths.root) return undefined;
    let stored;
    try {
      stored = origin.backend.readStored(origin.state, origin.uid);
    } catch (err) {
      // Expunged (and purged) since it was read: the bytes in `m` are written as a new message.
      if (err instanceof MailstoreError && err.code === "NOT_FOUND") return undefined;
      throw err;
    }
    const meta = readDboxMetadata(stored.message.metadata);
    return { mapUidValidity: origin.backend.ctx.map.uidValidity, mapUid: stored.resolved.entry.mapUid, guid: meta.guid ?? guid128ToString(guid128At(origin.state, stored.resolved.seq)), receivedTime: meta.receivedTime };
  }

  async messageInfo(state: IndexMapState, uid: number): Promise<StoredMessageInfo> {
    const { message, resolved } = this.readStored(state, uid);
    const meta = readDboxMetadata(message.metadata);
    return {
      guid: meta.guid ?? guid128ToString(guid128At(state, resolved.seq)),
      physicalSize: meta.physicalSize ?? message.body.length,
      receivedTime: meta.receivedTime ?? resolved.record.saveDate,
      savedTime: resolved.record.saveDate,
    };
  }

  /** The mdbox-hdr's mailbox_guid. */
  mailboxGuid(state: IndexMapState): string | undefined {
    const ext = extension(state, MDBOX_HDR_EXT_NAME);
    const hdr = ext === undefined ? undefined : decodeMdboxHeader(extensionHeader(ext));
    return hdr === undefined ? undefined : guid128StringUnlessEmpty(hdr.mailboxGuid);
  }

  async close(): Promise<void> {
    this.reader.forget();
  }

  /**
   * Finds `uid`'s map record.
   * @throws MailstoreError NOT_FOUND for an unknown uid or a map uid the map
   *   does not have (the storage needs a rebuild).
   */
  resolve(state: IndexMapState, uid: number): ResolvedMessage {
    // The two fields only, not the whole record (keywords, modseq): a fetch resolves every message.
    const seq = seqOfUid(state, uid);
    if (seq === 0) throw new MailstoreError("NOT_FOUND", `no message with uid ${uid}`, { path: this.indexPrefix });
    if (this.mdboxRecordsOf?.state !== state) this.mdboxRecordsOf = { state, at: mdboxRecordOffset(state) };
    // Read in the row, not through a view of it per message.
    const row = this.mdboxRecordsOf.at < 0 ? undefined : state.records.row(seq - 1);
    const record = row === undefined ? undefined : decodeMdboxRecordAt(row.bytes, row.offset + this.mdboxRecordsOf.at);
    if (record === undefined) throw new IndexCorruptedError(`uid ${uid} has no map uid`, { path: this.indexPrefix });
    const entry = this.ctx.map.lookup(record.mapUid);
    if (entry === undefined) {
      throw new MailstoreError("NOT_FOUND", `map uid ${record.mapUid} (uid ${uid}) is not in the map: the storage needs a rebuild`, { path: this.ctx.paths.mapPrefix });
    }
    return { uid, seq, record, entry };
  }

  /**
   * Reads the stored message of `uid`: primary m.N, else ALT. A purge may
   * have moved it since our map state (it deletes the old file only after
   * the map says where the copy is), so a missing file means: refresh the
   * map and look again.
   */
  private readStored(state: IndexMapState, uid: number): { message: DboxMessage; resolved: ResolvedMessage } {
    // Read-ahead keyed to the map state the record came from (see DboxMessageReader).
    return this.readStoredWith(state, uid, (file, entry) => this.reader.read(file, entry.offset, entry.size, this.ctx.map.state));
  }

  /** readStored with `read` reading the record (the whole message, or its body only). */
  private readStoredWith<M extends { size: number }>(state: IndexMapState, uid: number, read: (filePath: string, entry: MapEntry) => M): { message: M; resolved: ResolvedMessage } {
    for (let attempt = 0; ; attempt++) {
      const resolved = this.resolve(state, uid);
      const filePath = this.ctx.paths.readPath(resolved.entry.fileId);
      try {
        if (filePath === undefined) throw Object.assign(new Error("gone"), { code: "ENOENT" });
        const message = read(filePath, resolved.entry);
        if (message.size !== resolved.entry.size) {
          throw new MailCorruptedError(`message at offset ${resolved.entry.offset} has size ${message.size}, the map says ${resolved.entry.size}`, { path: filePath, offset: resolved.entry.offset });
        }
        return { message, resolved };
      } catch (err) {
        const retry = (err as NodeJS.ErrnoException).code === "ENOENT" || err instanceof MailCorruptedError;
        if (!retry || attempt >= 2) {
          if ((err as NodeJS.ErrnoException).code === "ENOENT") {
            throw new MailstoreError("NOT_FOUND", `m.${resolved.entry.fileId} of uid ${uid} is missing`, { path: this.ctx.paths.filePath(resolved.entry.fileId) });
          }
          throw err;
        }
        this.reader.forget();
        this.ctx.map.refresh();
      }
    }
  }

  /**
   * The records that give the mailbox its mdbox-hdr when it has none (a log
   * not created by us or Dovecot).
   * @throws IndexCorruptedError when its map_uid_validity names another map:
   *   its map uids mean nothing in this one (Dovecot rebuilds then).
   */
  private checkHeader(state: IndexMapState, mapUidValidity: number): LogRecord[] {
    const ext = extension(state, MDBOX_HDR_EXT_NAME);
    const hdr = ext === undefined ? undefined : decodeMdboxHeader(extensionHeader(ext));
    if (hdr === undefined || hdr.mapUidValidity === 0) {
      return mdboxHeaderRecords({ mapUidValidity, mailboxGuid: hdr?.mailboxGuid.some((b) => b !== 0) ? hdr.mailboxGuid : generateGuid128(), flags: hdr?.flags ?? 0 });
    }
    if (hdr.mapUidValidity !== mapUidValidity) {
      throw new IndexCorruptedError(`mailbox map_uid_validity ${hdr.mapUidValidity} does not match the map's ${mapUidValidity}: the storage needs a rebuild`, { path: this.indexPrefix });
    }
    return [];
  }
}

/** The `guid` extension value of message `seq` (all zero when unset). */
function guid128At(state: IndexMapState, seq: number): Uint8Array {
  return extRecordAt(state, seq, GUID_EXT_NAME) ?? new Uint8Array(16);
}

function guidOf(item: SaveItem): string {
  return item.kind === "copy" ? item.fallback.guid : item.guid;
}
