import { ByteWriter } from "./bytes.js";
import { corrupt, type PayloadSource, type RecordCodec } from "./records/context.js";
import { appendCodec } from "./records/append.js";
import { attributeUpdateCodec } from "./records/attribute-update.js";
import { expungeGuidCodec } from "./records/expunge-guid.js";
import { extAtomicIncCodec } from "./records/ext-atomic-inc.js";
import { extIntroCodec } from "./records/ext-intro.js";
import { extRecUpdateCodec } from "./records/ext-rec-update.js";
import { extResetCodec } from "./records/ext-reset.js";
import { flagUpdateCodec } from "./records/flag-update.js";
import { extHdrUpdate32Codec, extHdrUpdateCodec, headerUpdateCodec } from "./records/header-update.js";
import { keywordUpdateCodec } from "./records/keyword-update.js";
import { boundaryCodec, indexDeletedCodec, indexUndeletedCodec } from "./records/markers.js";
import { modseqUpdateCodec } from "./records/modseq-update.js";
import { expungeCodec, keywordResetCodec } from "./records/uid-ranges.js";
import { encodeRecordSize } from "./size-encoding.js";
import {
  EXPUNGE_PROT,
  RecordType,
  TYPE_EXTERNAL,
  TYPE_MASK,
  TYPE_SYNC,
  type LogRecord,
  type LogRecordBody,
  type LogRecordType,
} from "./types.js";

/** On-disk type value (masked) of every record type; expunges carry the protection bits. */
export const RECORD_TYPE_VALUES: Record<LogRecordType, number> = {
  expunge: RecordType.EXPUNGE | EXPUNGE_PROT,
  append: RecordType.APPEND,
  "flag-update": RecordType.FLAG_UPDATE,
  "header-update": RecordType.HEADER_UPDATE,
  "ext-intro": RecordType.EXT_INTRO,
  "ext-reset": RecordType.EXT_RESET,
  "ext-hdr": RecordType.EXT_HDR_UPDATE,
  "ext-rec": RecordType.EXT_REC_UPDATE,
  "keyword-update": RecordType.KEYWORD_UPDATE,
  "keyword-reset": RecordType.KEYWORD_RESET,
  "ext-atomic-inc": RecordType.EXT_ATOMIC_INC,
  "expunge-guid": RecordType.EXPUNGE_GUID | EXPUNGE_PROT,
  "modseq-update": RecordType.MODSEQ_UPDATE,
  "ext-hdr32": RecordType.EXT_HDR_UPDATE32,
  "index-deleted": RecordType.INDEX_DELETED,
  "index-undeleted": RecordType.INDEX_UNDELETED,
  boundary: RecordType.BOUNDARY,
  "attribute-update": RecordType.ATTRIBUTE_UPDATE,
};

const CODECS: { [T in LogRecordType]: RecordCodec<Extract<LogRecordBody, { type: T }>> } = {
  expunge: expungeCodec,
  append: appendCodec,
  "flag-update": flagUpdateCodec,
  "header-update": headerUpdateCodec,
  "ext-intro": extIntroCodec,
  "ext-reset": extResetCodec,
  "ext-hdr": extHdrUpdateCodec,
  "ext-rec": extRecUpdateCodec,
  "keyword-update": keywordUpdateCodec,
  "keyword-reset": keywordResetCodec,
  "ext-atomic-inc": extAtomicIncCodec,
  "expunge-guid": expungeGuidCodec,
  "modseq-update": modseqUpdateCodec,
  "ext-hdr32": extHdrUpdate32Codec,
  "index-deleted": indexDeletedCodec,
  "index-undeleted": indexUndeletedCodec,
  boundary: boundaryCodec,
  "attribute-update": attributeUpdateCodec,
};

const TYPE_BY_VALUE = new Map<number, LogRecordType>(
  Object.entries(RECORD_TYPE_VALUES).map(([name, value]) => [value, name as LogRecordType]),
);

/**
 * Maps a record header's type field to a record type name. Expunge types must
 * carry the full protection mask; since it overlaps other type bits, masked
 * values are compared for equality, never tested bit by bit.
 */
export function recordTypeOf(typeField: number, src: PayloadSource, headerOffset: number): LogRecordType {
  const masked = typeField & TYPE_MASK;
  const name = TYPE_BY_VALUE.get(masked);
  if (name !== undefined) return name;
  if ((masked & (RecordType.EXPUNGE | RecordType.EXPUNGE_GUID)) !== 0) {
    throw corrupt(src, `expunge record type 0x${typeField.toString(16)} is missing its protection mask`, headerOffset);
  }
  throw corrupt(src, `unknown transaction record type 0x${typeField.toString(16)}`, headerOffset);
}

/** Decodes the payload `src` of a record whose header carried `typeField`. */
export function decodeRecord(typeField: number, src: PayloadSource, headerOffset: number): LogRecord {
  const type = recordTypeOf(typeField, src, headerOffset);
  const record = (CODECS[type] as RecordCodec).decode(src) as LogRecord;
  record.external = (typeField & TYPE_EXTERNAL) !== 0;
  record.sync = (typeField & TYPE_SYNC) !== 0;
  return record;
}

/**
 * Whether an append may fold `record` as its caller made it instead of
 * decoding the bytes it just encoded from it: its codec says a decode gives
 * back an equal record (RecordCodec.decodesToItself; issue #11: an mdbox
 * expunge's EXPUNGE_GUID and refcount EXT_ATOMIC_INC, a rebuild's or
 * import's EXT_REC_UPDATE). Every other record is decoded from the written
 * bytes. test/unit/log/own-records.test.ts checks both ways agree.
 * @param extRecordSize the record size of the ext intro before `record` in
 *   its transaction (what an EXT_REC_UPDATE is decoded with), if any.
 */
export function decodesToItself(record: LogRecord, extRecordSize?: number): boolean {
  if (typeof record.external !== "boolean" || typeof record.sync !== "boolean") return false;
  return (CODECS[record.type] as RecordCodec).decodesToItself?.(record, extRecordSize) ?? false;
}

/** The type field Dovecot would write for `record`. */
export function typeFieldOf(record: LogRecord): number {
  let value = RECORD_TYPE_VALUES[record.type];
  if (record.external || record.type === "boundary") value |= TYPE_EXTERNAL;
  if (record.sync) value |= TYPE_SYNC;
  return value >>> 0;
}

/**
 * Appends one record (8-byte header + payload, padded to 4) to `out` and
 * returns its total size. An empty payload is never written: Dovecot treats
 * it as corruption.
 */
export function encodeRecordInto(record: LogRecord, out: ByteWriter): number {
  const start = out.reserve(8);
  (CODECS[record.type] as RecordCodec).encode(record, out);
  out.padFrom(start);
  const size = out.length - start;
  if (size === 8) throw new RangeError(`${record.type} record with an empty payload`);
  encodeRecordSize(size, out.bytes, start);
  out.view.setUint32(start + 4, typeFieldOf(record), true);
  return size;
}

export function encodeRecord(record: LogRecord): Uint8Array {
  const out = new ByteWriter(64);
  encodeRecordInto(record, out);
  return out.result();
}
