/**
 * The `modseq` extension (index-file.md §6.2, transaction-log.md §8): when it
 * exists, every message keeps the modseq of its last change in an 8-byte
 * field, and the extension header keeps {highest_modseq u64, log_seq u32,
 * log_offset u32}. Without it nothing per message is tracked and a message's
 * modseq reads as the mailbox's highest (what Dovecot returns too).
 */
import type { LogPosition, LogRecord } from "../log/types.js";
import type { ApplyContext } from "./apply-context.js";
import type { ExtensionInfo } from "./state.js";

export const MODSEQ_EXT_NAME = "modseq";
/** sizeof(struct mail_index_modseq_header). */
export const MODSEQ_HDR_SIZE = 16;

type ModseqUpdateRecord = Extract<LogRecord, { type: "modseq-update" }>;
type AttributeUpdateRecord = Extract<LogRecord, { type: "attribute-update" }>;

function modseqExtId(exts: readonly ExtensionInfo[]): number {
  return exts.findIndex((e) => e.name === MODSEQ_EXT_NAME);
}

/** Offset of the per-message modseq field, or -1 when modseqs are not tracked. */
export function modseqFieldOffset(exts: readonly ExtensionInfo[]): number {
  const id = modseqExtId(exts);
  return id >= 0 && exts[id].recordSize === 8 ? exts[id].recordOffset : -1;
}

/** highest_modseq from the modseq extension header, or 0n when there is none. */
export function headerHighestModseq(exts: readonly ExtensionInfo[]): bigint {
  const id = modseqExtId(exts);
  if (id < 0 || exts[id].hdrSize < MODSEQ_HDR_SIZE) return 0n;
  return readHdrU64(exts[id].hdrData);
}

function readHdrU64(data: Uint8Array): bigint {
  return (BigInt(readHdrU32(data, 4)) << 32n) | BigInt(readHdrU32(data, 0));
}

function readHdrU32(data: Uint8Array, at: number): number {
  return (data[at] | (data[at + 1] << 8) | (data[at + 2] << 16)) + data[at + 3] * 0x1000000;
}

function writeHdrU32(data: Uint8Array, at: number, value: number): void {
  data[at] = value & 0xff;
  data[at + 1] = (value >>> 8) & 0xff;
  data[at + 2] = (value >>> 16) & 0xff;
  data[at + 3] = value >>> 24;
}

/**
 * The modseq header data to change in place (ext `id`): the context's copy,
 * remembered in its modseqLayout while the registry is unchanged, so that
 * the raise per record and the stamp per transaction find it without a lookup.
 */
function writableModseqHdr(ctx: ApplyContext, id: number): Uint8Array {
  const layout = ctx.modseqLayout;
  if (layout.hdr !== undefined && !ctx.registryChanging) return layout.hdr;
  const data = ctx.writableHdrData(id);
  if (!ctx.registryChanging) layout.hdr = data;
  return data;
}

/** The modseq header data as it is now (read only). */
function currentModseqHdr(ctx: ApplyContext, id: number): Uint8Array {
  const owned = ctx.modseqLayout.hdr;
  return owned !== undefined && !ctx.registryChanging ? owned : ctx.hdrData(id);
}

/** Fills ctx.modseqLayout, cached while the registry is unchanged (see ApplyContext.modseqLayout). */
function modseqLayout(ctx: ApplyContext): ApplyContext["modseqLayout"] {
  const layout = ctx.modseqLayout;
  if (layout.known && !ctx.registryChanging) return layout;
  const id = ctx.extIdByName(MODSEQ_EXT_NAME);
  const ext = id >= 0 ? ctx.exts[id] : undefined;
  layout.hdrId = ext !== undefined && ext.hdrSize >= MODSEQ_HDR_SIZE ? id : -1;
  layout.fieldOffset = ext !== undefined && ext.recordSize === 8 ? ext.recordOffset : -1;
  layout.known = !ctx.registryChanging;
  return layout;
}

/** ext_id of the modseq extension when its header can hold struct mail_index_modseq_header, else -1. */
function ctxModseqHeaderId(ctx: ApplyContext): number {
  return modseqLayout(ctx).hdrId;
}

/** modseqFieldOffset() through the context's cache. */
function ctxModseqFieldOffset(ctx: ApplyContext): number {
  return modseqLayout(ctx).fieldOffset;
}

/** Reads the u64 at `offset` of a row as a bigint. */
export function readU64(words: Uint32Array, offset: number): bigint {
  const w = offset >>> 2;
  return (BigInt(words[w + 1]) << 32n) | BigInt(words[w]);
}

/**
 * The last modseq split into 32-bit halves: a fold asks for the same one for
 * every record of a transaction, and BigInt arithmetic allocates.
 */
const split = { modseq: -1n, lo: 0, hi: 0 };

function splitModseq(modseq: bigint): void {
  if (modseq === split.modseq) return;
  split.modseq = modseq;
  if (modseq <= MAX_SAFE_MODSEQ) {
    // Number arithmetic: exact below 2^53, and allocates nothing.
    const n = Number(modseq);
    split.lo = n >>> 0;
    split.hi = Math.floor(n / 0x100000000);
  } else {
    split.lo = Number(modseq & 0xffffffffn);
    split.hi = Number(modseq >> 32n);
  }
}

const MAX_SAFE_MODSEQ = BigInt(Number.MAX_SAFE_INTEGER);

/** Raises the header's highest_modseq (Dovecot's ctx->highest_modseq, written back at sync end). */
export function raiseHighestModseq(ctx: ApplyContext, modseq: bigint): void {
  const id = ctxModseqHeaderId(ctx);
  if (id < 0) return;
  splitModseq(modseq);
  const lo = split.lo;
  const hi = split.hi;
  const data = currentModseqHdr(ctx, id);
  const curHi = readHdrU32(data, 4);
  if (curHi > hi || (curHi === hi && readHdrU32(data, 0) >= lo)) return;
  const out = writableModseqHdr(ctx, id);
  writeHdrU32(out, 0, lo);
  writeHdrU32(out, 4, hi);
}

/**
 * Sets the modseq of messages first..last (0-based) to `modseq` where it is
 * lower (mail_index_modseq_update_to_highest: never lowers, also when the
 * flags did not actually change).
 */
export function raiseMessageModseqs(ctx: ApplyContext, first: number, last: number, modseq: bigint, explicit = false): void {
  const offset = ctxModseqFieldOffset(ctx);
  if (offset < 0 || first > last) return;
  raiseHighestModseq(ctx, modseq);
  // Split again: raiseHighestModseq left it split, this is a compare and two loads.
  splitModseq(modseq);
  const lo = split.lo;
  const hi = split.hi;
  const editor = ctx.edit();
  const rs = editor.recordSize;
  const fx = ctx.effects;
  const cur = editor.span(first, last);
  do {
    // The record index of leaf row i (effects only).
    const leafStart = cur.first - cur.from;
    // Consecutive rows raised, reported as one run (fx.modseqRun); explicit raises one each.
    let runFrom = -1;
    let runTo = -1;
    const to = cur.to;
    for (let i = cur.from; i <= to; i++) {
      const w = (i * rs + offset) >>> 2;
      const curHi = cur.words[w + 1];
      if (curHi > hi || (curHi === hi && cur.words[w] >= lo)) continue;
      cur.writable();
      cur.words[w] = lo;
      cur.words[w + 1] = hi;
      if (fx === undefined) continue;
      if (explicit) fx.modseq(leafStart + i, cur.words[(i * rs) >>> 2], modseq, true);
      else {
        if (runFrom >= 0 && runTo !== i - 1) {
          fx.modseqRun(leafStart + runFrom, cur.words[(runFrom * rs) >>> 2], leafStart + runTo, cur.words[(runTo * rs) >>> 2], modseq);
          runFrom = -1;
        }
        if (runFrom < 0) runFrom = i;
        runTo = i;
      }
    }
    if (runFrom >= 0) fx!.modseqRun(leafStart + runFrom, cur.words[(runFrom * rs) >>> 2], leafStart + runTo, cur.words[(runTo * rs) >>> 2], modseq);
  } while (cur.next());
}

/**
 * After the modseq header was written (the enabling EXT_HDR_UPDATE), messages
 * that have no modseq yet get its highest_modseq: Dovecot fills the zeros the
 * same way when modseq tracking starts, so every existing message reports the
 * modseq at which tracking began (transaction-log.md §8).
 */
export function fillMissingModseqs(ctx: ApplyContext): void {
  const offset = ctxModseqFieldOffset(ctx);
  const id = ctxModseqHeaderId(ctx);
  if (offset < 0 || id < 0 || ctx.records.count === 0) return;
  const highest = readHdrU64(ctx.hdrData(id));
  if (highest === 0n) return;
  const lo = Number(highest & 0xffffffffn);
  const hi = Number(highest >> 32n);
  const editor = ctx.edit();
  const rs = editor.recordSize;
  const fx = ctx.effects;
  let indexStart = 0;
  editor.forRange(0, editor.count - 1, (cur, from, to) => {
    // The record index of leaf row i is indexStart + i - from (effects only).
    const leafStart = indexStart - from;
    indexStart += to - from + 1;
    for (let i = from; i <= to; i++) {
      const w = (i * rs + offset) >>> 2;
      if (cur.words[w] !== 0 || cur.words[w + 1] !== 0) continue;
      cur.writable();
      cur.words[w] = lo;
      cur.words[w + 1] = hi;
      fx?.modseq(leafStart + i, cur.words[(i * rs) >>> 2], highest, false);
    }
  });
}

/**
 * At the end of a transaction: the header's log position moves to `end`
 * (Dovecot writes highest_modseq and log_seq/log_offset at the end of a sync;
 * doing it per transaction gives the same bytes at every point a checkpoint
 * can be taken).
 */
export function stampModseqHeader(ctx: ApplyContext, end: LogPosition): void {
  const id = ctxModseqHeaderId(ctx);
  if (id < 0) return;
  const current = currentModseqHdr(ctx, id);
  const seq = readHdrU32(current, 8);
  const offset = readHdrU32(current, 12);
  if (seq > end.fileSeq || (seq === end.fileSeq && offset >= end.offset)) return;
  const data = writableModseqHdr(ctx, id);
  writeHdrU32(data, 8, end.fileSeq);
  writeHdrU32(data, 12, end.offset);
}

/** MODSEQ_UPDATE: raise messages' modseqs; uid 0 only raises the highest. */
export function applyModseqUpdate(ctx: ApplyContext, record: ModseqUpdateRecord): void {
  const offset = ctxModseqFieldOffset(ctx);
  let highest = 0n;
  for (const u of record.updates) {
    if (u.uid !== 0) {
      const index = ctx.records.indexOfUid(u.uid);
      if (index < 0) continue;
      if (offset < 0) throw ctx.corrupt("modseqs updated before they were enabled");
      raiseMessageModseqs(ctx, index, index, u.modseq, true);
    }
    if (u.modseq > highest) highest = u.modseq;
  }
  raiseHighestModseq(ctx, highest);
}

/** ATTRIBUTE_UPDATE: the index ignores the attributes; only the highest modseq moves. */
export function applyAttributeUpdate(ctx: ApplyContext, record: AttributeUpdateRecord): void {
  raiseHighestModseq(ctx, ctx.entry.modseq);
  const fx = ctx.effects;
  if (fx === undefined) return;
  // The index keeps no attributes, so every entry is reported as written: set or unset.
  for (const c of record.changes) fx.attribute(c.key, c.scope === "p" ? "private" : "shared", c.op === "+" ? "set" : "unset");
}
