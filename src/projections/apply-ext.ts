/**
 * The extension records (transaction-log.md §4.6-§4.10): EXT_INTRO selects
 * or creates an extension, and EXT_RESET, EXT_HDR_UPDATE(32), EXT_REC_UPDATE
 * and EXT_ATOMIC_INC act on the extension it selected.
 */
import type { HeaderPatch, LogRecord } from "../log/types.js";
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

/** EXT_REC_UPDATE: each entry overwrites its message's field; unknown uids are skipped. */
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
  for (const u of record.updates) {
    if (u.uid === 0 || u.uid >= nextUid) throw ctx.corrupt(`Extension record update for invalid uid=${u.uid}`);
    const index = ctx.records.indexOfUid(u.uid);
    if (index < 0) continue;
    // One row through the editor's span, not forRange: a purge applies one of these per message it moves.
    const editor = ctx.edit();
    const c = editor.span(index, index);
    const o = c.from * editor.recordSize + ext.recordOffset;
    let same = true;
    for (let k = 0; k < ext.recordSize; k++) {
      const want = k < size ? u.data[k] : 0;
      if (c.bytes[o + k] !== want) same = false;
    }
    if (same) continue;
    c.writable();
    c.bytes.set(size === u.data.length ? u.data : u.data.subarray(0, size), o);
    if (size < ext.recordSize) c.bytes.fill(0, o + size, o + ext.recordSize);
  }
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
  for (const u of record.updates) {
    if (u.uid === 0 || u.uid >= nextUid) throw ctx.corrupt(`Extension record inc for invalid uid=${u.uid}`);
    const index = ctx.records.indexOfUid(u.uid);
    if (index < 0) continue;
    if ((size !== 1 && size !== 2 && size !== 4 && size !== 8) || size > ext.recordSize) {
      throw ctx.corrupt(`Extension record inc with invalid size=${size}`);
    }
    const max = (1n << BigInt(size * 8)) - 1n;
    const diff = BigInt(u.diff);
    if (diff > max) throw ctx.corrupt(`Extension record inc diff=${u.diff} larger than max value=${max} (uid=${u.uid})`);
    const editor = ctx.edit();
    editor.forRange(index, index, (c, i) => {
      const o = i * editor.recordSize + ext.recordOffset;
      const view = new DataView(c.bytes.buffer, c.bytes.byteOffset + o, size);
      const orig = readUnsigned(view, size);
      const value = orig + diff;
      if (value < 0n) throw ctx.corrupt(`Extension record inc drops number below zero (uid=${u.uid}, diff=${u.diff}, orig=${orig})`);
      if (value > max) throw ctx.corrupt(`Extension record inc overflows number (uid=${u.uid}, diff=${u.diff}, orig=${orig})`);
      if (diff === 0n) return;
      c.writable();
      writeUnsigned(new DataView(c.bytes.buffer, c.bytes.byteOffset + o, size), size, value);
    });
  }
}

function readUnsigned(view: DataView, size: number): bigint {
  switch (size) {
    case 1:
      return BigInt(view.getUint8(0));
    case 2:
      return BigInt(view.getUint16(0, true));
    case 4:
      return BigInt(view.getUint32(0, true));
    default:
      return view.getBigUint64(0, true);
  }
}

function writeUnsigned(view: DataView, size: number, value: bigint): void {
  switch (size) {
    case 1:
      view.setUint8(0, Number(value));
      break;
    case 2:
      view.setUint16(0, Number(value), true);
      break;
    case 4:
      view.setUint32(0, Number(value), true);
      break;
    default:
      view.setBigUint64(0, value, true);
  }
}
