import { assert, LogCorruptedError } from "../../shared/errors.js";
import type { ByteWriter } from "../bytes.js";
import type { LogRecordBody, UidRange } from "../types.js";

/** The payload of one record, as the codec of its type sees it. */
export interface PayloadSource {
  bytes: Uint8Array;
  view: DataView;
  /** File offset of the first payload byte. */
  start: number;
  /** File offset just past the payload. */
  end: number;
  path: string;
  fileSeq: number;
  /** record_size of the extension introduced earlier in this transaction. */
  extRecordSize: number | undefined;
  /** File offset of bytes[0] (non-zero when decoding a slice of the file). */
  delta: number;
}

/** Decodes and encodes the payload of one record type. */
export interface RecordCodec<B extends LogRecordBody = LogRecordBody> {
  decode(src: PayloadSource): B;
  encode(body: B, out: ByteWriter): void;
  /**
   * Whether decode() of what encode() writes for `body` gives back an equal
   * body (every field already in its on-disk form, nothing the decoder would
   * refuse or change), so that an append may fold `body` itself instead of
   * decoding the bytes it just wrote (see codec.ts decodesToItself). Only
   * the per-message types a mass change writes by the thousand have one.
   * @param extRecordSize the record size of the ext intro before it in its transaction, if any.
   */
  decodesToItself?(body: B, extRecordSize: number | undefined): boolean;
}

/** A u32 other than 0, as the decoders read a uid. */
export function isUid(v: number): boolean {
  return v >>> 0 === v && v !== 0;
}

export function corrupt(src: PayloadSource, message: string, offset = src.start): LogCorruptedError {
  return new LogCorruptedError(message, { path: src.path, fileSeq: src.fileSeq, offset: offset + src.delta });
}

export function requireMultiple(src: PayloadSource, entrySize: number, what: string): number {
  const length = src.end - src.start;
  if (length % entrySize !== 0) {
    throw corrupt(src, `${what}: payload size ${length} is not a multiple of ${entrySize}`);
  }
  return length / entrySize;
}

/**
 * Reads {uid1, uid2} pairs from `at` to the payload end, checking them as
 * Dovecot's log view does: uid1 != 0, uid1 <= uid2, ascending, no overlap.
 */
export function readUidRanges(src: PayloadSource, at: number, what: string): UidRange[] {
  checkUidRanges(src, at, what);
  // Sized up front, as a fresh decode always was.
  const out = new Array<UidRange>((src.end - at) / 8);
  for (let i = 0, p = at; p < src.end; i++, p += 8) out[i] = { uid1: src.view.getUint32(p, true), uid2: src.view.getUint32(p + 4, true) };
  return out;
}

/**
 * Checks {uid1, uid2} pairs from `at` to the payload end as Dovecot's log
 * view does (uid1 != 0, uid1 <= uid2, ascending, no overlap), keeping
 * nothing: readUidRanges decodes after it; a replay applies them from
 * the bytes. Throws LogCorruptedError.
 */
export function checkUidRanges(src: PayloadSource, at: number, what: string): void {
  const length = src.end - at;
  if (length <= 0 || length % 8 !== 0) {
    throw corrupt(src, `${what}: UID range list of ${length} bytes`, at);
  }
  let prev = 0;
  for (let p = at; p < src.end; p += 8) {
    const uid1 = src.view.getUint32(p, true);
    const uid2 = src.view.getUint32(p + 4, true);
    if (!isValidUidRange(uid1, uid2, prev)) {
      throw corrupt(src, `${what}: invalid UID range ${uid1}..${uid2}`, p);
    }
    prev = uid2;
  }
}

/**
 * The rule Dovecot's reader applies to a record's UID ranges: each starts
 * at 1 or more, ends at or after its start, and starts after the previous
 * one ended (`prev`, 0 for the first).
 */
export function isValidUidRange(uid1: number, uid2: number, prev: number): boolean {
  return uid1 !== 0 && uid1 <= uid2 && uid1 > prev && uid2 <= 0xffffffff;
}

/**
 * Asserts, before encoding, what the reader will check: a record that
 * breaks it would be a log Dovecot calls corrupted (the API normalizes
 * ranges, so this is a bug, not bad input).
 */
export function assertUidRanges(ranges: readonly UidRange[], what: string): void {
  let prev = 0;
  for (const r of ranges) {
    // The message only on failure: an argument's template literal is built on every call (a range per record).
    if (!(Number.isInteger(r.uid1) && Number.isInteger(r.uid2) && isValidUidRange(r.uid1, r.uid2, prev))) {
      assert(false, `${what}: UID range ${r.uid1}..${r.uid2} after ${prev}`);
    }
    prev = r.uid2;
  }
}

export function writeUidRanges(ranges: readonly UidRange[], out: ByteWriter, what = "UID ranges"): void {
  assertUidRanges(ranges, what);
  for (const r of ranges) {
    out.u32(r.uid1);
    out.u32(r.uid2);
  }
}

/**
 * Gives a raw record (RawFlagUpdate, RawKeywordUpdate) its `view` of the log
 * file's bytes as a writable data property, as fast to read as any field,
 * but not enumerable: a spread or structuredClone of the record does not
 * copy the whole file's buffer.
 */
export function defineHiddenView(record: object): void {
  Object.defineProperty(record, "view", { value: new DataView(new ArrayBuffer(0)), writable: true, enumerable: false, configurable: false });
}

/**
 * A raw record's payload (already checked by the scan) as a PayloadSource,
 * for its decode when a reader other than the fold asks for its fields:
 * `start` and `end` index `view` (delta 0; no error can name a file here).
 */
export function rawPayload(view: DataView, start: number, end: number): PayloadSource {
  return { bytes: new Uint8Array(view.buffer, view.byteOffset, view.byteLength), view, start, end, path: "", fileSeq: 0, extRecordSize: undefined, delta: 0 };
}
