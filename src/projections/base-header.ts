/**
 * The base header of dovecot.index (struct mail_index_header, 120 bytes;
 * index-file.md §3): field layout, and the conversion between the typed
 * object the projection keeps and the bytes that HEADER_UPDATE records patch
 * and dovecot.index stores.
 */

export const INDEX_MAJOR_VERSION = 7;
export const INDEX_MINOR_VERSION = 3;
/** sizeof(struct mail_index_header) in Dovecot 2.x; also the minimum base_header_size. */
export const BASE_HEADER_SIZE = 120;
/** sizeof(struct mail_index_record): uid u32 + flags u8 + 3 padding bytes. */
export const BASE_RECORD_SIZE = 8;
/** MAIL_INDEX_RECORD_MIN_SIZE: the first byte an extension field may use. */
export const RECORD_MIN_EXT_OFFSET = 5;
export const INDEX_COMPAT_LITTLE_ENDIAN = 0x01;
export const DAY_FIRST_UID_COUNT = 8;

/** Header `flags` bits (enum mail_index_header_flag). */
export const IndexHeaderFlag = {
  /** Never legitimately on disk: a file carrying it is rejected. */
  CORRUPTED: 0x01,
  /** Some records carry the DIRTY flag (maildir/mbox flags not yet written back). */
  HAVE_DIRTY: 0x02,
  /** The index was repaired by fsck. */
  FSCKD: 0x04,
} as const;

/**
 * The base header fields the projection stores. `header_size`, `record_size`
 * and `messages_count` are not stored: they follow from the extension list and
 * the records (see `IndexHeader`), so they can never disagree with them.
 */
export interface IndexBaseHeader {
  readonly majorVersion: number;
  readonly minorVersion: number;
  /** 120 for every 2.x file; larger values keep the extra bytes in `baseHeaderExtra`. */
  readonly baseHeaderSize: number;
  readonly compatFlags: number;
  /** UNIX time of creation; shared with the log and the cache. */
  readonly indexId: number;
  /** IndexHeaderFlag bits. */
  readonly flags: number;
  readonly uidValidity: number;
  readonly nextUid: number;
  readonly unusedOldRecentMessagesCount: number;
  readonly seenMessagesCount: number;
  readonly deletedMessagesCount: number;
  readonly firstRecentUid: number;
  readonly firstUnseenUidLowwater: number;
  readonly firstDeletedUidLowwater: number;
  readonly logFileSeq: number;
  readonly logFileTailOffset: number;
  readonly logFileHeadOffset: number;
  readonly unusedOldSyncSizePart1: number;
  readonly log2RotateTime: number;
  readonly lastTempFileScan: number;
  readonly dayStamp: number;
  /** Always 8 entries. */
  readonly dayFirstUid: readonly number[];
}

/** The full header as Dovecot would write it. */
export interface IndexHeader extends IndexBaseHeader {
  readonly headerSize: number;
  readonly recordSize: number;
  readonly messagesCount: number;
}

type U32Field = Exclude<keyof IndexBaseHeader, "majorVersion" | "minorVersion" | "baseHeaderSize" | "compatFlags" | "dayFirstUid">;

/** Byte offsets of the u32 fields (mail-index.h). */
export const U32_FIELD_OFFSETS: ReadonlyArray<readonly [U32Field | "headerSize" | "recordSize" | "messagesCount", number]> = [
  ["headerSize", 4],
  ["recordSize", 8],
  ["indexId", 16],
  ["flags", 20],
  ["uidValidity", 24],
  ["nextUid", 28],
  ["messagesCount", 32],
  ["unusedOldRecentMessagesCount", 36],
  ["seenMessagesCount", 40],
  ["deletedMessagesCount", 44],
  ["firstRecentUid", 48],
  ["firstUnseenUidLowwater", 52],
  ["firstDeletedUidLowwater", 56],
  ["logFileSeq", 60],
  ["logFileTailOffset", 64],
  ["logFileHeadOffset", 68],
  ["unusedOldSyncSizePart1", 72],
  ["log2RotateTime", 76],
  ["lastTempFileScan", 80],
  ["dayStamp", 84],
];
export const TAIL_OFFSET_FIELD_OFFSET = 64;
const DAY_FIRST_UID_OFFSET = 88;

/** The header of an index that does not exist yet (mail_index_header_init). */
export function initialBaseHeader(indexId: number): IndexBaseHeader {
  return {
    majorVersion: INDEX_MAJOR_VERSION,
    minorVersion: INDEX_MINOR_VERSION,
    baseHeaderSize: BASE_HEADER_SIZE,
    compatFlags: INDEX_COMPAT_LITTLE_ENDIAN,
    indexId,
    flags: 0,
    uidValidity: 0,
    nextUid: 1,
    unusedOldRecentMessagesCount: 0,
    seenMessagesCount: 0,
    deletedMessagesCount: 0,
    firstRecentUid: 1,
    firstUnseenUidLowwater: 0,
    firstDeletedUidLowwater: 0,
    logFileSeq: 1,
    logFileTailOffset: 0,
    logFileHeadOffset: 0,
    unusedOldSyncSizePart1: 0,
    log2RotateTime: 0,
    lastTempFileScan: 0,
    dayStamp: 0,
    dayFirstUid: [0, 0, 0, 0, 0, 0, 0, 0],
  };
}

/** Writes the 120-byte struct at `at` (little-endian). */
export function writeBaseHeader(view: DataView, at: number, hdr: IndexHeader): void {
  view.setUint8(at, hdr.majorVersion);
  view.setUint8(at + 1, hdr.minorVersion);
  view.setUint16(at + 2, hdr.baseHeaderSize, true);
  view.setUint8(at + 12, hdr.compatFlags);
  for (let i = 13; i < 16; i++) view.setUint8(at + i, 0);
  for (const [name, off] of U32_FIELD_OFFSETS) view.setUint32(at + off, hdr[name] >>> 0, true);
  for (let i = 0; i < DAY_FIRST_UID_COUNT; i++) view.setUint32(at + DAY_FIRST_UID_OFFSET + i * 4, hdr.dayFirstUid[i] >>> 0, true);
}

/** Reads the 120-byte struct at `at`; the caller has checked the length. */
export function readBaseHeader(view: DataView, at: number): IndexHeader {
  const fields: Record<string, number> = {};
  for (const [name, off] of U32_FIELD_OFFSETS) fields[name] = view.getUint32(at + off, true);
  const dayFirstUid: number[] = [];
  for (let i = 0; i < DAY_FIRST_UID_COUNT; i++) dayFirstUid.push(view.getUint32(at + DAY_FIRST_UID_OFFSET + i * 4, true));
  return {
    ...(fields as Record<U32Field | "headerSize" | "recordSize" | "messagesCount", number>),
    majorVersion: view.getUint8(at),
    minorVersion: view.getUint8(at + 1),
    baseHeaderSize: view.getUint16(at + 2, true),
    compatFlags: view.getUint8(at + 12),
    dayFirstUid,
  };
}
