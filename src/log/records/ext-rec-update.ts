import { pad4 } from "../bytes.js";
import type { ExtRecUpdate, LogRecordBody, PackedExtRecUpdates } from "../types.js";
import { corrupt, isUid, requireMultiple, type PayloadSource, type RecordCodec } from "./context.js";

type ExtRecUpdateBody = Extract<LogRecordBody, { type: "ext-rec" }>;

/**
 * EXT_REC_UPDATE (0x200): {uid u32, data[record_size], pad4}[], where
 * record_size is the one carried by the ext-intro earlier in the transaction:
 * the record cannot be parsed without it.
 */
export const extRecUpdateCodec: RecordCodec<ExtRecUpdateBody> = {
  decode(src) {
    const { recordSize, entrySize, count } = checkedLayout(src);
    const updates: ExtRecUpdate[] = new Array(count);
    // One copy of the record's entries, each entry's data a view of it: the input is not
    // aliased, and there is no buffer per entry (a rebuild decodes one per message per field).
    const copy = src.bytes.slice(src.start, src.start + count * entrySize);
    for (let i = 0, p = src.start; i < count; i++, p += entrySize) {
      const at = p - src.start + 4;
      updates[i] = { uid: src.view.getUint32(p, true), data: copy.subarray(at, at + recordSize) };
    }
    return { type: "ext-rec", recordSize, updates };
  },
  decodesToItself(body, extRecordSize) {
    if (body.recordSize !== extRecordSize) return false;
    // Entries built packed are written as they are: their decode is the same entries.
    if (body.packed !== undefined) return body.updates.length === 0 && packedDecodesToItself(body.packed, body.recordSize);
    // The decoder reads the entries with the intro's size (cutting or padding the data to
    // it) and gives each entry's data as a Uint8Array of exactly that size.
    if ("packed" in body) return false;
    const updates = body.updates;
    for (let i = 0; i < updates.length; i++) {
      const u = updates[i];
      if (!isUid(u.uid) || u.data.length !== extRecordSize || u.data.constructor !== Uint8Array) return false;
    }
    return true;
  },
  encode(body, out) {
    const recordSize = body.recordSize;
    const entrySize = pad4(4 + recordSize);
    const packed = body.packed;
    if (packed !== undefined) {
      // Already in the record's layout (a reusing scan's, or built packed): one copy.
      if (packed.entrySize !== entrySize) throw new Error(`ext-rec: packed entries of ${packed.entrySize} bytes for a record size of ${recordSize}`);
      out.raw(packed.bytes.subarray(packed.start, packed.start + packed.count * entrySize));
      return;
    }
    // Straight into the writer, not a padded copy of each entry's data: one entry per message of a rebuild or import.
    const updates = body.updates;
    // One reserve for all entries (it may move the buffer, so bytes and words are taken after it).
    const start = out.reserve(updates.length * entrySize);
    const bytes = out.bytes;
    const words = out.words(start);
    // Indexed, not for-of: run once per big transaction, mostly unoptimized, where for-of allocates per element.
    for (let i = 0, at = start; i < updates.length; i++, at += entrySize) {
      const u = updates[i];
      words[at >>> 2] = u.uid;
      const data = u.data;
      const n = Math.min(recordSize, data.length);
      for (let k = 0; k < n; k++) bytes[at + 4 + k] = data[k];
      bytes.fill(0, at + 4 + n, at + entrySize);
    }
  },
};

/**
 * Decodes into `out` (a reusing scan's record) without an object per entry:
 * its `packed` points at the entries in `src`'s bytes, which must outlive
 * the use of `out`. Checks and throws exactly as the codec's decode does.
 */
export function decodeExtRecUpdateInto(src: PayloadSource, out: ExtRecUpdateBody & { packed: PackedExtRecUpdates }): ExtRecUpdateBody {
  const { recordSize, entrySize, count } = checkedLayout(src);
  out.recordSize = recordSize;
  if (out.updates.length !== 0) out.updates.length = 0;
  const packed = out.packed;
  packed.bytes = src.bytes;
  packed.view = src.view;
  packed.start = src.start;
  packed.count = count;
  packed.entrySize = entrySize;
  return out;
}

/** The record's entry layout, once every entry is checked (the checks both decoders make). */
function checkedLayout(src: PayloadSource): { recordSize: number; entrySize: number; count: number } {
  const recordSize = src.extRecordSize;
  if (recordSize === undefined) throw corrupt(src, "ext-rec-update without a preceding ext-intro");
  const entrySize = pad4(4 + recordSize);
  const count = requireMultiple(src, entrySize, "ext-rec");
  for (let p = src.start, end = src.start + count * entrySize; p < end; p += entrySize) {
    if (src.view.getUint32(p, true) === 0) throw corrupt(src, "ext-rec-update: uid 0", p);
  }
  return { recordSize, entrySize, count };
}

/** Whether decoding `packed`'s bytes gives them back: the record's own entry size, no uid 0 (the decoder refuses it). */
function packedDecodesToItself(packed: PackedExtRecUpdates, recordSize: number): boolean {
  if (packed.entrySize !== pad4(4 + recordSize)) return false;
  for (let i = 0, p = packed.start; i < packed.count; i++, p += packed.entrySize) if (packed.view.getUint32(p, true) === 0) return false;
  return true;
}

/**
 * EXT_REC_UPDATE entries for `items` laid out as the record holds them
 * ({uid, data, pad4} each, in one buffer): no object or view per entry, and
 * the record is encoded with one copy (issue #11: a rebuild writes one
 * entry per message per field).
 */
export function packedExtRecUpdates<T>(
  items: readonly T[],
  recordSize: number,
  uidOf: (item: T, index: number) => number,
  write: (out: Uint8Array, at: number, item: T) => void,
): PackedExtRecUpdates {
  const { packed, words } = zeroedPackedExtRecUpdates(items.length, recordSize);
  const entrySize = packed.entrySize;
  for (let i = 0, at = 0; i < items.length; i++, at += entrySize) {
    words[at >>> 2] = uidOf(items[i], i);
    write(packed.bytes, at + 4, items[i]);
  }
  return packed;
}

/**
 * `count` zeroed EXT_REC_UPDATE entries for `recordSize`-byte data, packed
 * as packedExtRecUpdates() lays them out, and the same bytes as u32s: entry
 * i's uid is words[i × entryWords], its data the words after it. For
 * callers that fill them from columns in a loop of their own, with no call
 * per entry (a rebuild's `map`, `ref`, `mdbox` and `guid` updates).
 */
export function zeroedPackedExtRecUpdates(count: number, recordSize: number): { packed: PackedExtRecUpdates; words: Uint32Array; entryWords: number } {
  const entrySize = pad4(4 + recordSize);
  const bytes = new Uint8Array(count * entrySize);
  return { packed: { bytes, view: new DataView(bytes.buffer), start: 0, count, entrySize }, words: new Uint32Array(bytes.buffer), entryWords: entrySize >>> 2 };
}
