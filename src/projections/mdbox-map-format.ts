/**
 * The mdbox map index's extensions (dbox.md §4.2) and the log records that
 * change them. The map is an ordinary Dovecot index whose "messages" are
 * stored message bodies: record uid = map_uid, and two extensions say where
 * each body lives (`map`) and how many mailbox records point at it (`ref`).
 *
 * Byte layouts (little endian, as every Dovecot index field):
 *
 *     map header  (8):  highest_file_id u32, rebuild_count u32
 *     map record (12):  file_id u32, offset u32, size u32      align 4
 *     ref record  (2):  refcount u16                           align 2
 *
 * `offset` is where the message's 30-byte dbox header starts inside
 * `m.<file_id>`; `size` covers header + body + metadata block.
 */
import { readU32LE, writeU32LE } from "../log/bytes.js";
import { packedExtRecUpdates, zeroedPackedExtRecUpdates } from "../log/records/ext-rec-update.js";
import { EXT_ID_BY_NAME, EXT_INTRO_FLAG_NO_SHRINK, type ExtAtomicInc, type LogRecord } from "../log/types.js";

/** Extension names, sizes and alignments (dbox.md §4.2). */
export const MAP_EXT_NAME = "map";
export const MAP_HDR_SIZE = 8;
export const MAP_RECORD_SIZE = 12;
export const MAP_RECORD_ALIGN = 4;

export const REF_EXT_NAME = "ref";
export const REF_RECORD_SIZE = 2;
export const REF_RECORD_ALIGN = 2;

/**
 * The highest refcount a copy may create. Dovecot refuses a copy once
 * `refcount + diff >= 32768` (mdbox_map_update_refcount), well below the u16
 * limit, so that two racing processes cannot overflow it together.
 */
export const REFCOUNT_MAX = 32767;

/** Where one stored message lives: the `map` extension record. */
export interface MapRecord {
  readonly fileId: number;
  readonly offset: number;
  readonly size: number;
}

/** The `map` extension header. */
export interface MapHeader {
  readonly highestFileId: number;
  readonly rebuildCount: number;
}

/** @returns the 12 bytes of a `map` record. */
export function encodeMapRecord(r: MapRecord): Uint8Array {
  const out = new Uint8Array(MAP_RECORD_SIZE);
  writeMapRecord(out, 0, r);
  return out;
}

/** Writes the 12 bytes of a `map` record at `out[at]` (by hand: one per message of a rebuild). */
function writeMapRecord(out: Uint8Array, at: number, r: MapRecord): void {
  writeU32LE(out, at, r.fileId);
  writeU32LE(out, at + 4, r.offset);
  writeU32LE(out, at + 8, r.size);
}

/** @returns the record in `bytes` (at least 12 bytes), or undefined when file_id is 0 (never set). */
export function decodeMapRecord(bytes: Uint8Array): MapRecord | undefined {
  // By hand, not through a DataView: mapEntries and every fetch's map lookup decode one per record.
  return mapRecordFileId(bytes, 0) === 0 ? undefined : { fileId: readU32LE(bytes, 0), offset: readU32LE(bytes, 4), size: readU32LE(bytes, 8) };
}

/**
 * file_id of the `map` record at bytes[at] (0: never placed), read in place:
 * for scans of the whole map that must not build an object per record.
 */
export function mapRecordFileId(bytes: Uint8Array, at: number): number {
  return readU32LE(bytes, at);
}

/**
 * Reads the `map` record at `bytes[at]` into `out`, allocating nothing: a
 * purge walks every row of the map several times (issue #11).
 * @returns false when file_id is 0 (never set); `out` is then unchanged.
 */
export function readMapRecordInto(bytes: Uint8Array, at: number, out: { fileId: number; offset: number; size: number }): boolean {
  const fileId = mapRecordFileId(bytes, at);
  if (fileId === 0) return false;
  out.fileId = fileId;
  out.offset = readU32LE(bytes, at + 4);
  out.size = readU32LE(bytes, at + 8);
  return true;
}

/** @returns the refcount stored in the `ref` field at `bytes[at]`. */
export function decodeRefcount(bytes: Uint8Array, at = 0): number {
  return bytes[at] | (bytes[at + 1] << 8);
}

/** @returns the 8 bytes of the `map` header. */
export function encodeMapHeader(h: MapHeader): Uint8Array {
  const out = new Uint8Array(MAP_HDR_SIZE);
  const view = new DataView(out.buffer);
  view.setUint32(0, h.highestFileId, true);
  view.setUint32(4, h.rebuildCount, true);
  return out;
}

/** @returns the header in `bytes`; missing bytes read as 0 (a header Dovecot has not written yet). */
export function decodeMapHeader(bytes: Uint8Array): MapHeader {
  const full = new Uint8Array(MAP_HDR_SIZE);
  full.set(bytes.subarray(0, MAP_HDR_SIZE));
  const view = new DataView(full.buffer);
  return { highestFileId: view.getUint32(0, true), rebuildCount: view.getUint32(4, true) };
}

/** Whether a record is EXTERNAL: Dovecot's saves write the map non-external, purge and rebuild external. */
export interface RecordFlags {
  readonly external: boolean;
}

/** EXT_INTRO selecting `map` by name, as Dovecot introduces it (NO_SHRINK, full sizes). */
export function mapIntro(f: RecordFlags): LogRecord {
  return {
    type: "ext-intro", external: f.external, sync: false,
    intros: [{ extId: EXT_ID_BY_NAME, resetId: 0, hdrSize: MAP_HDR_SIZE, recordSize: MAP_RECORD_SIZE, recordAlign: MAP_RECORD_ALIGN, flags: EXT_INTRO_FLAG_NO_SHRINK, name: MAP_EXT_NAME }],
  };
}

/** EXT_INTRO selecting `ref` by name. */
export function refIntro(f: RecordFlags): LogRecord {
  return {
    type: "ext-intro", external: f.external, sync: false,
    intros: [{ extId: EXT_ID_BY_NAME, resetId: 0, hdrSize: 0, recordSize: REF_RECORD_SIZE, recordAlign: REF_RECORD_ALIGN, flags: EXT_INTRO_FLAG_NO_SHRINK, name: REF_EXT_NAME }],
  };
}

/** [intro map, EXT_HDR_UPDATE highest_file_id]: Dovecot patches only the first u32. */
export function highestFileIdRecords(highestFileId: number, f: RecordFlags): LogRecord[] {
  const data = new Uint8Array(4);
  new DataView(data.buffer).setUint32(0, highestFileId, true);
  return [mapIntro(f), { type: "ext-hdr", external: f.external, sync: false, patches: [{ offset: 0, data }] }];
}

/** [intro map, EXT_HDR_UPDATE of the whole header] (rebuild writes both fields). */
export function mapHeaderRecords(h: MapHeader, f: RecordFlags): LogRecord[] {
  return [mapIntro(f), { type: "ext-hdr", external: f.external, sync: false, patches: [{ offset: 0, data: encodeMapHeader(h) }] }];
}

/** [intro map, EXT_REC_UPDATE] setting where each map uid lives; none for an empty list. */
export function mapRecordRecords(updates: ReadonlyArray<{ mapUid: number } & MapRecord>, f: RecordFlags): LogRecord[] {
  if (updates.length === 0) return [];
  return [
    mapIntro(f),
    { type: "ext-rec", external: f.external, sync: false, recordSize: MAP_RECORD_SIZE, updates: [], packed: packedExtRecUpdates(updates, MAP_RECORD_SIZE, (u) => u.mapUid, writeMapRecord) },
  ];
}

/** Where messages are, a column per field, indexed alike (a rebuild's found messages). */
export interface MapPlaceColumns {
  readonly fileIds: ArrayLike<number>;
  readonly offsets: ArrayLike<number>;
  readonly sizes: ArrayLike<number>;
}

/**
 * mapRecordRecords() for the messages `indexes` of `places`, message i
 * under map uid `mapUids[i]`: the entries' words stored straight from the
 * columns, in one loop with no call per message (a rebuild writes one per
 * message, mostly in code run once).
 */
export function mapRecordRecordsOfColumns(indexes: readonly number[], mapUids: ArrayLike<number>, places: MapPlaceColumns, f: RecordFlags): LogRecord[] {
  if (indexes.length === 0) return [];
  const { packed, words, entryWords } = zeroedPackedExtRecUpdates(indexes.length, MAP_RECORD_SIZE);
  // {uid, file_id, offset, size}: u32s, little-endian as the words are (the layout writeMapRecord writes).
  for (let k = 0, w = 0; k < indexes.length; k++, w += entryWords) {
    const i = indexes[k];
    words[w] = mapUids[i];
    words[w + 1] = places.fileIds[i];
    words[w + 2] = places.offsets[i];
    words[w + 3] = places.sizes[i];
  }
  return [mapIntro(f), { type: "ext-rec", external: f.external, sync: false, recordSize: MAP_RECORD_SIZE, updates: [], packed }];
}

/**
 * refSetRecords() for the messages `indexes`, message i under map uid
 * `mapUids[i]` with refcount `refcounts[i]` (at most REFCOUNT_MAX), stored
 * as mapRecordRecordsOfColumns() stores its entries.
 */
export function refSetRecordsOfColumns(indexes: readonly number[], mapUids: ArrayLike<number>, refcounts: ArrayLike<number>, f: RecordFlags): LogRecord[] {
  if (indexes.length === 0) return [];
  const { packed, words, entryWords } = zeroedPackedExtRecUpdates(indexes.length, REF_RECORD_SIZE);
  // {uid, refcount u16, pad 2}: the refcount's word is the u16 with its zero padding.
  for (let k = 0, w = 0; k < indexes.length; k++, w += entryWords) {
    const i = indexes[k];
    words[w] = mapUids[i];
    words[w + 1] = refcounts[i] & 0xffff;
  }
  return [refIntro(f), { type: "ext-rec", external: f.external, sync: false, recordSize: REF_RECORD_SIZE, updates: [], packed }];
}

/** [intro ref, EXT_REC_UPDATE] setting absolute refcounts (new saves: 1); none for an empty list. */
export function refSetRecords(updates: ReadonlyArray<{ mapUid: number; refcount: number }>, f: RecordFlags): LogRecord[] {
  if (updates.length === 0) return [];
  return [
    refIntro(f),
    {
      type: "ext-rec", external: f.external, sync: false, recordSize: REF_RECORD_SIZE,
      updates: [],
      packed: packedExtRecUpdates(updates, REF_RECORD_SIZE, (u) => u.mapUid, (out, at, u) => {
        out[at] = u.refcount & 0xff;
        out[at + 1] = u.refcount >> 8;
      }),
    },
  ];
}

/** [intro ref, EXT_ATOMIC_INC]: how copies (+1) and expunges (−1) change refcounts. */
export function refIncRecords(updates: ReadonlyArray<{ mapUid: number; diff: number }>, f: RecordFlags): LogRecord[] {
  return refIncRecordsOf(updates.map((u) => ({ uid: u.mapUid, diff: u.diff })), f);
}

/**
 * refIncRecords of entries already in the record's form (uid = map uid),
 * taken as they are: an expunge builds one per message (issue #11).
 */
export function refIncRecordsOf(incs: ExtAtomicInc[], f: RecordFlags): LogRecord[] {
  const nonZero = incs.every((u) => u.diff !== 0) ? incs : incs.filter((u) => u.diff !== 0);
  if (nonZero.length === 0) return [];
  return [refIntro(f), { type: "ext-atomic-inc", external: f.external, sync: false, updates: nonZero }];
}

/**
 * The records a brand-new map log starts with (observed from doveadm): one
 * EXTERNAL HEADER_UPDATE setting uid_validity (= creation time) and
 * log2_rotate_time = 0xffffffff.
 */
export function initialMapRecords(uidValidity: number): LogRecord[] {
  const validity = new Uint8Array(4);
  new DataView(validity.buffer).setUint32(0, uidValidity, true);
  return [
    {
      type: "header-update", external: true, sync: false,
      patches: [
        { offset: 24, data: validity }, // uid_validity
        { offset: 76, data: Uint8Array.of(0xff, 0xff, 0xff, 0xff) }, // log2_rotate_time
      ],
    },
  ];
}
