/**
 * The extension records (transaction-log.md §4.6-§4.10): EXT_INTRO selects
 * or creates an extension, and EXT_RESET, EXT_HDR_UPDATE(32), EXT_REC_UPDATE
 * and EXT_ATOMIC_INC act on the extension it selected.
 */
import { packedExtRecUpdates } from "../log/records/ext-rec-update.js";
import type { ExtAtomicInc, HeaderPatch, LogRecord, PackedExtRecUpdates } from "../log/types.js";
import type { RowSpan } from "./record-store.js";
import type { ApplyContext } from "./apply-context.js";
import { fillMissingModseqs, MODSEQ_EXT_NAME } from "./apply-modseq.js";
import { applyIntro } from "./ext-registry.js";
import type { CurrentExt } from "./state.js";

type Rec<T extends LogRecord["type"]> = Extract<LogRecord, { type: T }>;

export function applyExtIntro(ctx: ApplyContext, record: Rec<"ext-intro">): void {
  for (const intro of record.intros) applyIntro(ctx, intro);
}

/** The current extension, or a corruption error naming what lacked an intro. */
function current(ctx: ApplyContext, what: string): CurrentExt {
  const cur = ctx.draft.currentExt;
  if (cur === null) throw ctx.corrupt(`${what} without intro prefix`);
  return cur;
}

/** EXT_RESET: new reset_id; unless preserve_data, header and every record field become zero. */
export function applyExtReset(ctx: ApplyContext, record: Rec<"ext-reset">): void {
  // A reset applies even after a stale intro: it is how the new generation starts.
  const cur = current(ctx, "Extension reset");
  const ext = ctx.exts[cur.extId];
  if (ext.resetId !== record.newResetId) ctx.changeRegistry()[cur.extId].resetId = record.newResetId;
  if (record.preserveData !== 0) return;
  const hdrData = ctx.hdrData(cur.extId);
  if (hdrData.subarray(0, ext.hdrSize).some((b) => b !== 0)) {
    const data = hdrData.slice();
    data.fill(0, 0, ext.hdrSize);
    ctx.setHdrData(cur.extId, data);
  }
  if (ext.recordSize > 0) ctx.edit().clearField(ext.recordOffset, ext.recordSize);
}

/** EXT_HDR_UPDATE / EXT_HDR_UPDATE32: patches of the current extension's header data. */
export function applyExtHdrUpdate(ctx: ApplyContext, record: Rec<"ext-hdr"> | Rec<"ext-hdr32">): void {
  const cur = current(ctx, "Extension header update");
  if (cur.ignore) return;
  const ext = ctx.exts[cur.extId];
  const data = patched(ctx, ctx.hdrData(cur.extId), ext.hdrSize, record.patches);
  if (data !== undefined) ctx.setHdrData(cur.extId, data);
  if (ext.name === MODSEQ_EXT_NAME) fillMissingModseqs(ctx);
}

/** The header data with the patches applied, or undefined when no byte changes. */
function patched(ctx: ApplyContext, hdrData: Uint8Array, hdrSize: number, patches: readonly HeaderPatch[]): Uint8Array | undefined {
  let data: Uint8Array | undefined;
  for (const p of patches) {
    if (p.offset + p.data.length > hdrSize) throw ctx.corrupt("Extension header update points outside header size");
    const target = data ?? hdrData;
    if (p.data.every((b, i) => target[p.offset + i] === b)) continue;
    data ??= hdrData.slice();
    data.set(p.data, p.offset);
  }
  return data;
}

/**
 * EXT_REC_UPDATE: each entry overwrites its message's field; unknown uids are
 * skipped. The entries come packed as the record holds them (`packed`: from a
 * reusing scan, or built so by a writer) or as objects (`updates`), which are
 * packed here first: one walk reads them, so both get the same checks and errors.
 */
export function applyExtRecUpdate(ctx: ApplyContext, record: Rec<"ext-rec">): void {
  const cur = current(ctx, "Extension record updated");
  if (cur.ignore) return;
  if (record.recordSize !== cur.recordSize) {
    throw ctx.corrupt(`entries of ${record.recordSize} bytes, but the intro said ${cur.recordSize}`);
  }
  const ext = ctx.exts[cur.extId];
  const nextUid = ctx.header.nextUid;
  const size = cur.recordSize;
  if (size > ext.recordSize) throw ctx.corrupt(`entries of ${size} bytes for a ${ext.recordSize}-byte field`);
  const packed = record.packed ?? packedExtRecUpdates(record.updates, size, (u) => u.uid, (out, at, u) => out.set(u.data.subarray(0, size), at));
  const count = packed.count;
  let field: FieldPlace | undefined;
  let n = 0;
  while (n < count) {
    const uid = packed.view.getUint32(packed.start + n * packed.entrySize, true);
    if (uid === 0 || uid >= nextUid) throw ctx.corrupt(`Extension record update for invalid uid=${uid}`);
    const index = ctx.records.indexOfUid(uid);
    if (index < 0) {
      n++;
      continue;
    }
    // The entries from n on, walked over the rows from `index` on a leaf at a time, as long
    // as each names its row's uid (issue #11: a rebuild or import writes one entry per
    // message, for consecutive uids, and a lookup per entry was most of it). An entry the
    // walk does not find in its row ends it; the loop looks that entry up on its own.
    const editor = ctx.edit();
    field ??= { recordSize: editor.recordSize, offset: ext.recordOffset, size, fieldSize: ext.recordSize, nextUid };
    const span = editor.span(index, Math.min(editor.count, index + count - n) - 1);
    let more: boolean;
    do {
      const end = n + span.to - span.from + 1;
      // Rows that hold their entry's bytes already are passed over: a record that changes
      // nothing copies no leaf (and the fold gives back the same state).
      const found = unchangedRows(span.bytes, span.words, span.from, span.to, packed, n, field);
      const row = found < 0 ? ~found : found;
      n += row - span.from;
      if (found >= 0 && row <= span.to) {
        span.writable();
        n = copyRows(span.bytes, span.words, row, span.to, packed, n, field);
      }
      more = n === end && span.next();
    } while (more);
  }
}

/** Where entries go in a row: the row size, the field's offset and size, the entries' data size; and the first uid not allocated. */
interface FieldPlace {
  readonly recordSize: number;
  readonly offset: number;
  readonly fieldSize: number;
  readonly size: number;
  readonly nextUid: number;
}

/**
 * The first of rows from..to (entries k… naming them) whose field differs
 * from its entry's data zero-padded, to+1 when none does, or ~row for the
 * first row whose entry does not name its uid (or names an unallocated one).
 */
function unchangedRows(bytes: Uint8Array, words: Uint32Array, from: number, to: number, packed: PackedExtRecUpdates, k: number, f: FieldPlace): number {
  const stride = f.recordSize >>> 2;
  const size = f.size;
  const src = packed.bytes;
  for (let row = from, p = packed.start + k * packed.entrySize; row <= to; row++, p += packed.entrySize) {
    const uid = packed.view.getUint32(p, true);
    if (words[row * stride] !== uid || uid >= f.nextUid) return ~row;
    const o = row * f.recordSize + f.offset;
    for (let b = 0; b < size; b++) if (bytes[o + b] !== src[p + 4 + b]) return row;
    for (let b = o + size, end = o + f.fieldSize; b < end; b++) if (bytes[b] !== 0) return row;
  }
  return to + 1;
}

/**
 * Copies entries k… into rows from..to of one leaf (`bytes`/`words`), each
 * entry's data zero-padded to the field, while each entry names its row's
 * uid. A function of typed arrays and numbers only: it runs once per
 * message and field, mostly cold, and a small loop is optimized early.
 * @returns the next entry: the first that did not name its row's uid (or
 *   named an unallocated one), or the one after row `to`'s.
 */
function copyRows(bytes: Uint8Array, words: Uint32Array, from: number, to: number, packed: PackedExtRecUpdates, k: number, f: FieldPlace): number {
  const recordSize = f.recordSize;
  const stride = recordSize >>> 2;
  const size = f.size;
  const end = f.offset + f.fieldSize;
  const nextUid = f.nextUid;
  const src = packed.bytes;
  const view = packed.view;
  for (let row = from, p = packed.start + k * packed.entrySize; row <= to; row++, k++, p += packed.entrySize) {
    const uid = view.getUint32(p, true);
    if (words[row * stride] !== uid || uid >= nextUid) return k;
    const o = row * recordSize + f.offset;
    for (let b = 0; b < size; b++) bytes[o + b] = src[p + 4 + b];
    for (let b = o + size, e = row * recordSize + end; b < e; b++) bytes[b] = 0;
  }
  return k;
}

/**
 * EXT_ATOMIC_INC: adds a signed delta to an unsigned 1/2/4/8-byte field
 * (the intro's record_size); going below zero or past the maximum is
 * corruption (the mdbox map's refcounts rely on it).
 */
export function applyExtAtomicInc(ctx: ApplyContext, record: Rec<"ext-atomic-inc">): void {
  const cur = current(ctx, "Extension record updated");
  if (cur.ignore) return;
  const ext = ctx.exts[cur.extId];
  const nextUid = ctx.header.nextUid;
  const size = cur.recordSize;
  const updates = record.updates;
  let place: IncPlace | undefined;
  let k = 0;
  while (k < updates.length) {
    const v = updates[k];
    checkIncUid(ctx, v.uid, nextUid);
    const index = ctx.records.indexOfUid(v.uid);
    if (index < 0) {
      k++;
      continue;
    }
    if ((size !== 1 && size !== 2 && size !== 4 && size !== 8) || size > ext.recordSize) {
      throw ctx.corrupt(`Extension record inc with invalid size=${size}`);
    }
    const editor = ctx.edit();
    place ??= { recordSize: editor.recordSize, offset: ext.recordOffset, size, max: size === 8 ? MAX_U64 : 2 ** (size * 8) - 1, nextUid };
    // The entries from k on, walked over the rows from `index` on a leaf at a time while each
    // names its row's uid (issue #11: an mdbox expunge decrements the refcounts of consecutive
    // map uids, and the purge after it folds them). The walk stops at an entry it does not find
    // in its row, looked up alone by the loop, or at one it would not apply: an 8-byte field,
    // or a check that fails, which incRow then throws with its message.
    const span = editor.span(index, Math.min(editor.count, index + updates.length - k) - 1);
    let more: boolean;
    do {
      const end = k + span.to - span.from + 1;
      const from = k;
      k = size === 8 ? k : incRows(span, updates, k, place);
      const row = span.from + (k - from);
      if (k < end && span.words[row * (place.recordSize >>> 2)] === updates[k].uid) {
        incRow(ctx, span, row, updates[k], place);
        k++;
        break;
      }
      more = k === end && span.next();
    } while (more);
  }
}

/** Where incs go in a row: the row size, the field's offset, size and maximum; and the first uid not allocated. */
interface IncPlace {
  readonly recordSize: number;
  readonly offset: number;
  readonly size: 1 | 2 | 4 | 8;
  readonly max: number | bigint;
  readonly nextUid: number;
}

/**
 * Adds entries k… to the span's current rows (a field of up to 4 bytes)
 * while each names its row's uid and passes the checks; copies the leaf
 * before the first change only (an entry of diff 0 changes nothing).
 * Numbers and typed arrays only: it runs once per message, mostly cold.
 * @returns the next entry: the first it did not apply, or the one after the span's last row's.
 */
function incRows(span: RowSpan, updates: readonly ExtAtomicInc[], k: number, f: IncPlace): number {
  const recordSize = f.recordSize;
  const stride = recordSize >>> 2;
  const size = f.size;
  const max = f.max as number;
  const nextUid = f.nextUid;
  const words = span.words;
  let bytes = span.bytes;
  let owned = false;
  // The row's uid word and field offset stepped, not multiplied: few operations per entry
  // while this runs in the interpreter (a purge's fold is its first and only call).
  for (let row = span.from, to = span.to, w = row * stride, o = row * recordSize + f.offset; row <= to; row++, k++, w += stride, o += recordSize) {
    const v = updates[k];
    const uid = v.uid;
    if (words[w] !== uid || uid >= nextUid) return k;
    const orig = size === 2 ? bytes[o] | (bytes[o + 1] << 8) : size === 1 ? bytes[o] : (bytes[o] | (bytes[o + 1] << 8) | (bytes[o + 2] << 16)) + bytes[o + 3] * 0x1000000;
    const value = orig + v.diff;
    // A diff past the maximum also ends up here (orig ≥ 0): incRow names it.
    if (value < 0 || value > max) return k;
    if (value === orig) continue;
    if (!owned) {
      span.writable();
      bytes = span.bytes;
      owned = true;
    }
    bytes[o] = value;
    if (size === 1) continue;
    bytes[o + 1] = value >>> 8;
    if (size === 2) continue;
    bytes[o + 2] = value >>> 16;
    bytes[o + 3] = value >>> 24;
  }
  return k;
}

/** One entry added to its row (found there), with Dovecot's checks: the path of 8-byte fields and of the entry incRows stopped at. */
function incRow(ctx: ApplyContext, span: RowSpan, row: number, v: ExtAtomicInc, f: IncPlace): void {
  checkIncUid(ctx, v.uid, f.nextUid);
  const max = f.max;
  if (v.diff > max) throw ctx.corrupt(`Extension record inc diff=${v.diff} larger than max value=${max} (uid=${v.uid})`);
  const o = row * f.recordSize + f.offset;
  const orig = readUnsigned(span.bytes, o, f.size);
  const value = typeof orig === "bigint" ? orig + BigInt(v.diff) : orig + v.diff;
  if (value < 0) throw ctx.corrupt(`Extension record inc drops number below zero (uid=${v.uid}, diff=${v.diff}, orig=${orig})`);
  if (value > max) throw ctx.corrupt(`Extension record inc overflows number (uid=${v.uid}, diff=${v.diff}, orig=${orig})`);
  if (v.diff === 0) return;
  span.writable();
  writeUnsigned(span.bytes, o, f.size, value);
}

/** Dovecot rejects an inc for uid 0 or one not yet allocated, whether or not the message still exists. */
function checkIncUid(ctx: ApplyContext, uid: number, nextUid: number): void {
  if (uid === 0 || uid >= nextUid) throw ctx.corrupt(`Extension record inc for invalid uid=${uid}`);
}

const MAX_U64 = (1n << 64n) - 1n;

/** A little-endian unsigned field: a number up to 4 bytes, a bigint for 8. */
function readUnsigned(b: Uint8Array, o: number, size: number): number | bigint {
  switch (size) {
    case 1:
      return b[o];
    case 2:
      return b[o] | (b[o + 1] << 8);
    case 4:
      return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16)) + b[o + 3] * 0x1000000;
    default:
      return new DataView(b.buffer, b.byteOffset + o, 8).getBigUint64(0, true);
  }
}

function writeUnsigned(b: Uint8Array, o: number, size: number, value: number | bigint): void {
  if (size === 8) {
    new DataView(b.buffer, b.byteOffset + o, 8).setBigUint64(0, BigInt(value), true);
    return;
  }
  // Below 2^32 here (checked against the field's maximum), so shifts are exact; a division
  // and Math.floor per byte showed in the profile of a mass expunge's refcounts (issue #11).
  const n = Number(value);
  for (let i = 0; i < size; i++) b[o + i] = (n >>> (8 * i)) & 0xff;
}
