/**
 * The extensions an mdbox mailbox index holds (dbox.md §4.1), and the log
 * records that set them, as Dovecot 2.3 writes them (all EXTERNAL: the
 * message data already exists when the mailbox log records it).
 *
 *     mdbox-hdr header (24): map_uid_validity u32, mailbox_guid[16], flags u8, unused[3]
 *     mdbox record      (8): map_uid u32, save_date u32          align 4
 *     guid record      (16): binary 128-bit message GUID         align 1
 */
import { readU32LE, writeU32LE } from "../../log/bytes.js";
import { packedExtRecUpdates, zeroedPackedExtRecUpdates } from "../../log/records/ext-rec-update.js";
import { EXT_ID_BY_NAME, EXT_INTRO_FLAG_NO_SHRINK, type LogRecord } from "../../log/types.js";
import { extension } from "../../projections/read.js";
import type { IndexMapState } from "../../projections/state.js";

/** Extension names, sizes and alignments (dbox.md §4.1). */
export const MDBOX_HDR_EXT_NAME = "mdbox-hdr";
export const MDBOX_HDR_SIZE = 24;
export const MDBOX_EXT_NAME = "mdbox";
export const MDBOX_RECORD_SIZE = 8;
export const MDBOX_RECORD_ALIGN = 4;
export const GUID_EXT_NAME = "guid";
export const GUID_RECORD_SIZE = 16;

/** struct mdbox_index_header. */
export interface MdboxIndexHeader {
  /** Must equal the map's uid_validity, or Dovecot rebuilds the storage. */
  readonly mapUidValidity: number;
  readonly mailboxGuid: Uint8Array;
  readonly flags: number;
}

/** struct mdbox_mail_index_record. */
export interface MdboxMailRecord {
  readonly mapUid: number;
  /** UNIX time the message was saved or copied into this mailbox. */
  readonly saveDate: number;
}

/** @returns the 24 bytes of an mdbox-hdr. */
export function encodeMdboxHeader(h: MdboxIndexHeader): Uint8Array {
  const out = new Uint8Array(MDBOX_HDR_SIZE);
  new DataView(out.buffer).setUint32(0, h.mapUidValidity, true);
  out.set(h.mailboxGuid.subarray(0, 16), 4);
  out[20] = h.flags;
  return out;
}

/** @returns the header, or undefined when `bytes` is shorter than 4 bytes (Dovecot: invalid). */
export function decodeMdboxHeader(bytes: Uint8Array): MdboxIndexHeader | undefined {
  if (bytes.length < 4) return undefined;
  const full = new Uint8Array(MDBOX_HDR_SIZE);
  full.set(bytes.subarray(0, MDBOX_HDR_SIZE));
  return { mapUidValidity: new DataView(full.buffer).getUint32(0, true), mailboxGuid: full.slice(4, 20), flags: full[20] };
}

/** @returns the 8 bytes of an `mdbox` record. */
export function encodeMdboxRecord(r: MdboxMailRecord): Uint8Array {
  const out = new Uint8Array(MDBOX_RECORD_SIZE);
  writeMdboxRecord(out, 0, r);
  return out;
}

/** Writes the 8 bytes of an `mdbox` record at `out[at]` (by hand: one per message of a rebuild). */
function writeMdboxRecord(out: Uint8Array, at: number, r: MdboxMailRecord): void {
  writeU32LE(out, at, r.mapUid);
  writeU32LE(out, at + 4, r.saveDate);
}

/** @returns the record, or undefined when map_uid is 0 (not an mdbox message). */
export function decodeMdboxRecord(bytes: Uint8Array | undefined): MdboxMailRecord | undefined {
  return bytes === undefined || bytes.length < MDBOX_RECORD_SIZE ? undefined : decodeMdboxRecordAt(bytes, 0);
}

/** decodeMdboxRecord of the record at `bytes[at]` (a row of the index: the caller checked the extension's size). */
export function decodeMdboxRecordAt(bytes: Uint8Array, at: number): MdboxMailRecord | undefined {
  const mapUid = mdboxMapUidAt(bytes, at);
  return mapUid === 0 ? undefined : { mapUid, saveDate: readU32LE(bytes, at + 4) };
}

/** Where a row of `state` holds its `mdbox` record, or -1 when the extension is missing or too small for one. */
export function mdboxRecordOffset(state: IndexMapState): number {
  const ext = extension(state, MDBOX_EXT_NAME);
  return ext !== undefined && ext.recordSize >= MDBOX_RECORD_SIZE ? ext.recordOffset : -1;
}

/** The map_uid of the `mdbox` record at `bytes[at]` (0: not an mdbox message), read without allocating. */
export function mdboxMapUidAt(bytes: Uint8Array, at: number): number {
  return readU32LE(bytes, at);
}

/**
 * The header records a new mailbox log starts with (observed from doveadm
 * `mailbox create`): EXTERNAL EXT_INTRO `mdbox-hdr` (flags 0, align 0) +
 * EXT_HDR_UPDATE of the 24 bytes + HEADER_UPDATE uid_validity.
 */
export function initialMailboxRecords(h: MdboxIndexHeader, uidValidity: number): LogRecord[] {
  const validity = new Uint8Array(4);
  new DataView(validity.buffer).setUint32(0, uidValidity, true);
  return [
    ...mdboxHeaderRecords(h, 0),
    { type: "header-update", external: true, sync: false, patches: [{ offset: 24, data: validity }] },
  ];
}

/** [intro mdbox-hdr, EXT_HDR_UPDATE] writing the whole header. */
export function mdboxHeaderRecords(h: MdboxIndexHeader, introFlags = EXT_INTRO_FLAG_NO_SHRINK): LogRecord[] {
  return [
    {
      type: "ext-intro", external: true, sync: false,
      intros: [{ extId: EXT_ID_BY_NAME, resetId: 0, hdrSize: MDBOX_HDR_SIZE, recordSize: 0, recordAlign: 0, flags: introFlags, name: MDBOX_HDR_EXT_NAME }],
    },
    { type: "ext-hdr", external: true, sync: false, patches: [{ offset: 0, data: encodeMdboxHeader(h) }] },
  ];
}

/** EXT_INTRO selecting `mdbox` by name (NO_SHRINK, full size). */
export function mdboxIntro(): LogRecord {
  return {
    type: "ext-intro", external: true, sync: false,
    intros: [{ extId: EXT_ID_BY_NAME, resetId: 0, hdrSize: 0, recordSize: MDBOX_RECORD_SIZE, recordAlign: MDBOX_RECORD_ALIGN, flags: EXT_INTRO_FLAG_NO_SHRINK, name: MDBOX_EXT_NAME }],
  };
}

/** Writes a GUID (cut or zero-padded to the field: `out` is zeroed) at `out[at]`; one native copy, not a loop per byte run mostly cold. */
function writeGuid(out: Uint8Array, at: number, u: { guid128: Uint8Array }): void {
  const g = u.guid128;
  out.set(g.length > GUID_RECORD_SIZE ? g.subarray(0, GUID_RECORD_SIZE) : g, at);
}

/** EXT_INTRO selecting `guid` by name (NO_SHRINK, full size). */
export function guidIntro(): LogRecord {
  return {
    type: "ext-intro", external: true, sync: false,
    intros: [{ extId: EXT_ID_BY_NAME, resetId: 0, hdrSize: 0, recordSize: GUID_RECORD_SIZE, recordAlign: 1, flags: EXT_INTRO_FLAG_NO_SHRINK, name: GUID_EXT_NAME }],
  };
}

/**
 * [intro mdbox, EXT_REC_UPDATE] for each uid: each update's own, or `uids[i]`
 * for the i-th (so that a caller with the uids apart need not build an
 * object per message to join them).
 */
export function mdboxRecordRecords(updates: ReadonlyArray<{ uid: number } & MdboxMailRecord>): LogRecord[];
export function mdboxRecordRecords(updates: readonly MdboxMailRecord[], uids: readonly number[]): LogRecord[];
export function mdboxRecordRecords(updates: ReadonlyArray<MdboxMailRecord & { uid?: number }>, uids?: readonly number[]): LogRecord[] {
  if (updates.length === 0) return [];
  return [
    mdboxIntro(),
    { type: "ext-rec", external: true, sync: false, recordSize: MDBOX_RECORD_SIZE, updates: [], packed: packedExtRecUpdates(updates, MDBOX_RECORD_SIZE, (u, i) => uids?.[i] ?? u.uid!, writeMdboxRecord) },
  ];
}

/**
 * mdboxRecordRecords() for messages put back from columns: the k-th under
 * uid `firstUid + k`, with map uid `mapUids[indexes[k]]` and save date
 * `saveDate`, the entries' words stored in one loop with no call per
 * message (a rebuild puts back every message of a lost index).
 */
export function mdboxRecordRecordsOfColumns(firstUid: number, indexes: readonly number[], mapUids: ArrayLike<number>, saveDate: number): LogRecord[] {
  if (indexes.length === 0) return [];
  const { packed, words, entryWords } = zeroedPackedExtRecUpdates(indexes.length, MDBOX_RECORD_SIZE);
  // {uid, map_uid, save_date}: u32s, little-endian as the words are (writeMdboxRecord's layout).
  for (let k = 0, w = 0; k < indexes.length; k++, w += entryWords) {
    words[w] = firstUid + k;
    words[w + 1] = mapUids[indexes[k]];
    words[w + 2] = saveDate;
  }
  return [mdboxIntro(), { type: "ext-rec", external: true, sync: false, recordSize: MDBOX_RECORD_SIZE, updates: [], packed }];
}

/**
 * guidRecordRecords() for messages put back from columns, uids as
 * mdboxRecordRecordsOfColumns(): the k-th's GUID is the 16 bytes of
 * `guids` at 16 × indexes[k].
 */
export function guidRecordRecordsOfColumns(firstUid: number, indexes: readonly number[], guids: Uint8Array): LogRecord[] {
  if (indexes.length === 0) return [];
  const { packed, words, entryWords } = zeroedPackedExtRecUpdates(indexes.length, GUID_RECORD_SIZE);
  const wordsPerGuid = GUID_RECORD_SIZE >>> 2;
  // By words where `guids` is word-aligned (a scan's column is), else a native copy per GUID.
  const guidWords = guids.byteOffset % 4 === 0 ? new Uint32Array(guids.buffer, guids.byteOffset, guids.length >>> 2) : undefined;
  for (let k = 0, w = 0; k < indexes.length; k++, w += entryWords) {
    words[w] = firstUid + k;
    const g = indexes[k] * wordsPerGuid;
    if (guidWords !== undefined) {
      // The four words by hand: a loop of four per message costs more than the stores when not yet optimized.
      words[w + 1] = guidWords[g];
      words[w + 2] = guidWords[g + 1];
      words[w + 3] = guidWords[g + 2];
      words[w + 4] = guidWords[g + 3];
    } else {
      packed.bytes.set(guids.subarray(g * 4, g * 4 + GUID_RECORD_SIZE), (w + 1) * 4);
    }
  }
  return [guidIntro(), { type: "ext-rec", external: true, sync: false, recordSize: GUID_RECORD_SIZE, updates: [], packed }];
}

/** [intro guid, EXT_REC_UPDATE] for each uid: each update's own, or `uids[i]` (as mdboxRecordRecords). */
export function guidRecordRecords(updates: ReadonlyArray<{ uid: number; guid128: Uint8Array }>): LogRecord[];
export function guidRecordRecords(updates: ReadonlyArray<{ guid128: Uint8Array }>, uids: readonly number[]): LogRecord[];
export function guidRecordRecords(updates: ReadonlyArray<{ uid?: number; guid128: Uint8Array }>, uids?: readonly number[]): LogRecord[] {
  if (updates.length === 0) return [];
  return [
    guidIntro(),
    { type: "ext-rec", external: true, sync: false, recordSize: GUID_RECORD_SIZE, updates: [],
      packed: packedExtRecUpdates(updates, GUID_RECORD_SIZE, (u, i) => uids?.[i] ?? u.uid!, writeGuid) },
  ];
}
