/**
 * The index extensions Dovecot's mbox storage keeps (index-file.md §6,
 * maildir-mbox.md B4), as log records and as read from a state:
 *
 * - `mbox` header, 32 bytes: `sync_size u64, sync_mtime u32, dirty_flag u8,
 *   unused[3], mailbox_guid[16]`. sync_size/sync_mtime are the mbox file's
 *   size and mtime (seconds) when the index last matched it: Dovecot skips
 *   reading the file when both still match (mbox-sync.c
 *   mbox_sync_has_changed), so a writer that changes the file must log the
 *   new values in the same transaction, or leave the old ones so that the
 *   next reader scans.
 * - `mbox` record, u64 align 8: the message's "from offset" (0 for the first
 *   message, else the offset of the LF before its `From `). Dovecot trusts
 *   it while the header matches the file ("Cached message offset … is
 *   invalid" otherwise), so every move must be logged.
 * - `header-md5` record, 16 bytes align 1: header-md5.ts, for messages
 *   without an X-UID.
 *
 * Dovecot introduces `mbox` by name with reset_id 0 (observed first log:
 * hdr_size 32, record_size 8, record_align 8).
 */
import { randomBytes } from "node:crypto";
import { EXT_ID_BY_NAME, type LogRecord } from "../../log/types.js";
import { readU32LE } from "../../log/bytes.js";
import { extension, extensionHeader, extRecordViewReader, type MessageRecord } from "../../projections/read.js";
import type { IndexMapState } from "../../projections/state.js";
import { PackedUpdatesBuilder } from "./packed-updates.js";

export const MBOX_EXT_NAME = "mbox";
export const MBOX_EXT_HDR_SIZE = 32;
export const HEADER_MD5_EXT_NAME = "header-md5";

/** The `mbox` extension header (struct mbox_index_header). */
export interface MboxSyncHeader {
  readonly syncSize: number;
  /** Seconds. */
  readonly syncMtime: number;
  readonly dirtyFlag: number;
  readonly mailboxGuid: Uint8Array;
}

const noSync = { external: true, sync: false } as const;

/** @returns the header as stored in `state`, or undefined when the extension is missing. */
export function readMboxSyncHeader(state: IndexMapState): MboxSyncHeader | undefined {
  const ext = extension(state, MBOX_EXT_NAME);
  if (ext === undefined || ext.hdrSize < MBOX_EXT_HDR_SIZE) return undefined;
  const data = extensionHeader(ext);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return {
    syncSize: Number(view.getBigUint64(0, true)),
    syncMtime: view.getUint32(8, true),
    dirtyFlag: view.getUint8(12),
    mailboxGuid: data.slice(16, 32),
  };
}

/** @returns a header with a fresh mailbox GUID and nothing synced. */
export function newMboxSyncHeader(): MboxSyncHeader {
  return { syncSize: 0, syncMtime: 0, dirtyFlag: 0, mailboxGuid: new Uint8Array(randomBytes(16)) };
}

function encodeHeader(h: MboxSyncHeader): Uint8Array {
  const out = new Uint8Array(MBOX_EXT_HDR_SIZE);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(h.syncSize), true);
  view.setUint32(8, h.syncMtime >>> 0, true);
  view.setUint8(12, h.dirtyFlag);
  out.set(h.mailboxGuid.subarray(0, 16), 16);
  return out;
}

function mboxIntro(): LogRecord {
  return {
    type: "ext-intro",
    ...noSync,
    intros: [{ extId: EXT_ID_BY_NAME, resetId: 0, hdrSize: MBOX_EXT_HDR_SIZE, recordSize: 8, recordAlign: 8, flags: 0, name: MBOX_EXT_NAME }],
  };
}

/** @returns the records that set the `mbox` header (introducing the extension if needed). */
export function mboxHeaderRecords(h: MboxSyncHeader): LogRecord[] {
  return [mboxIntro(), { type: "ext-hdr", ...noSync, patches: [{ offset: 0, data: encodeHeader(h) }] }];
}

/** @returns the records that set the from offsets of `updates` (none when empty). */
export function fromOffsetRecords(updates: ReadonlyArray<{ uid: number; offset: number }>): LogRecord[] {
  const entries = new PackedUpdatesBuilder(8, updates.length);
  for (const u of updates) entries.addU64(u.uid, u.offset);
  return fromOffsetRecordsOf(entries);
}

/** @returns the records that set the from offsets `entries` holds (none when empty; see packed-updates.ts). */
export function fromOffsetRecordsOf(entries: PackedUpdatesBuilder): LogRecord[] {
  if (entries.length === 0) return [];
  return [mboxIntro(), { type: "ext-rec", ...noSync, recordSize: 8, updates: [], packed: entries.finish() }];
}

/** @returns the records that set the header MD5s of `updates` (none when empty). */
export function headerMd5Records(updates: ReadonlyArray<{ uid: number; md5: Uint8Array }>): LogRecord[] {
  const entries = new PackedUpdatesBuilder(16, updates.length);
  for (const u of updates) entries.addBytes(u.uid, u.md5);
  return headerMd5RecordsOf(entries);
}

/** @returns the records that set the header MD5s `entries` holds (none when empty). */
export function headerMd5RecordsOf(entries: PackedUpdatesBuilder): LogRecord[] {
  if (entries.length === 0) return [];
  return [
    {
      type: "ext-intro",
      ...noSync,
      intros: [{ extId: EXT_ID_BY_NAME, resetId: 0, hdrSize: 0, recordSize: 16, recordAlign: 1, flags: 0, name: HEADER_MD5_EXT_NAME }],
    },
    { type: "ext-rec", ...noSync, recordSize: 16, updates: [], packed: entries.finish() },
  ];
}

/** @returns the from offset in an `mbox` record field, or undefined when there is none. */
function decodeFromOffset(data: Uint8Array | undefined): number | undefined {
  if (data === undefined || data.length < 8) return undefined;
  // By hand, not through a DataView and a BigInt: readers ask per message (exact below 2^53, far past any mbox).
  return readU32LE(data, 0) + readU32LE(data, 4) * 2 ** 32;
}

/** @returns the `header-md5` record field, or undefined when unset (all zero) or absent. */
function decodeHeaderMd5(data: Uint8Array | undefined): Uint8Array | undefined {
  if (data === undefined || data.length < 16 || data.every((b) => b === 0)) return undefined;
  return data;
}

/** @returns the message's from offset, or undefined when the index has none. */
export function fromOffsetOf(record: MessageRecord): number | undefined {
  return decodeFromOffset(record.ext(MBOX_EXT_NAME));
}

/** @returns the message's header MD5, or undefined when unset (all zero) or absent. */
export function headerMd5Of(record: MessageRecord): Uint8Array | undefined {
  return decodeHeaderMd5(record.ext(HEADER_MD5_EXT_NAME));
}

/** fromOffsetOf and headerMd5Of by sequence number, straight from the index rows. */
export interface MboxRecordReader {
  fromOffset(seq: number): number | undefined;
  /** A view into the index rows: compare it at once, never keep it. */
  headerMd5(seq: number): Uint8Array | undefined;
}

/**
 * @returns a reader of `state`'s from offsets and header MD5s: a reader that
 *   locates message after message needs only these two fields, and building
 *   a whole MessageRecord (keywords, modseq) per message cost an import of
 *   20,000 messages about 25 ms.
 */
export function mboxRecordReader(state: IndexMapState): MboxRecordReader {
  const fromOffsetAt = extRecordViewReader(state, MBOX_EXT_NAME);
  const headerMd5At = extRecordViewReader(state, HEADER_MD5_EXT_NAME);
  return { fromOffset: (seq) => decodeFromOffset(fromOffsetAt(seq)), headerMd5: (seq) => decodeHeaderMd5(headerMd5At(seq)) };
}
