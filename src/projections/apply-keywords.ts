/**
 * KEYWORD_UPDATE and KEYWORD_RESET (transaction-log.md §4.11-§4.12) and the
 * `keywords` extension they manage implicitly (index-file.md §6.1): a name
 * list in the extension header, one bitmap per message. No EXT_INTRO is ever
 * logged for it; it is created and grown here, taking the next ext_id.
 */
import { RawKeywordUpdate, type KeywordName } from "../log/records/keyword-update.js";
import { EXT_ID_BY_NAME, type LogRecord } from "../log/types.js";
import type { ApplyContext } from "./apply-context.js";
import { raiseMessageModseqs } from "./apply-modseq.js";
import { applyIntro, KEYWORDS_EXT_NAME } from "./ext-registry.js";
import type { ExtensionInfo } from "./state.js";

type KeywordUpdateRecord = Extract<LogRecord, { type: "keyword-update" }>;
type KeywordResetRecord = Extract<LogRecord, { type: "keyword-reset" }>;

/** Slack Dovecot adds whenever the keywords header has to grow. */
const KEYWORDS_HDR_SLACK = 128;

/** Bitmap bytes for `count` keywords: ceil(count/8), plus one when that is not a multiple of 4. */
export function keywordsRecordSize(count: number): number {
  const bytes = Math.ceil(count / 8);
  return bytes % 4 === 0 ? bytes : bytes + 1;
}

/** Keyword index of `name` (IMAP keywords compare ASCII case-insensitively, like Dovecot's strcasecmp), or -1. */
export function keywordIndex(keywords: readonly string[], name: string): number {
  // Keywords are only ever appended, so a cache entry is valid while the length matches.
  let cached = foldedIndexes.get(keywords);
  if (cached === undefined || cached.length !== keywords.length) {
    const byName = new Map<string, number>();
    for (let i = keywords.length - 1; i >= 0; i--) byName.set(asciiLower(keywords[i]), i);
    cached = { length: keywords.length, byName, asWritten: new Map() };
    foldedIndexes.set(keywords, cached);
  }
  const known = cached.asWritten.get(name);
  if (known !== undefined) return known;
  const index = cached.byName.get(asciiLower(name)) ?? -1;
  if (index >= 0 && cached.asWritten.size < AS_WRITTEN_MAX) cached.asWritten.set(name, index);
  return index;
}

/**
 * Per keyword list (replays look keywords up per record): folded name →
 * first index, and the spellings met so far → index, which spares folding
 * the same name again.
 */
const foldedIndexes = new WeakMap<readonly string[], { length: number; byName: Map<string, number>; asWritten: Map<string, number> }>();
/** Spellings remembered per list: a log naming a keyword in endless spellings gets no bigger cache. */
const AS_WRITTEN_MAX = 4096;

function asciiLower(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return s.replace(/[A-Z]/g, (u) => String.fromCharCode(u.charCodeAt(0) + 32));
  }
  return s;
}

/**
 * Parses the keywords extension header (mail_index_map_parse_keywords);
 * returns an error text instead of names when it is malformed.
 */
export function parseKeywordsHeader(data: Uint8Array, hdrSize: number): string[] | string {
  if (hdrSize < 4) return "keywords header too small";
  const view = new DataView(data.buffer, data.byteOffset, hdrSize);
  const count = view.getUint32(0, true);
  const namesStart = 4 + count * 8;
  if (namesStart > hdrSize) return "keywords_count larger than header size";
  if (count === 0) return [];
  const areaEnd = hdrSize - namesStart;
  if (data[hdrSize - 1] !== 0) return "Keyword header doesn't end with NUL";
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const offset = view.getUint32(4 + i * 8 + 4, true);
    if (offset > areaEnd) return "name_offset points outside allocated header";
    const start = namesStart + offset;
    let end = start;
    while (end < hdrSize && data[end] !== 0) end++;
    if (end === start) return "Empty keyword name in header";
    names.push(String.fromCharCode(...data.subarray(start, end)));
  }
  return names;
}

/** KEYWORD_UPDATE: add or remove one keyword on uid ranges; an unknown name is registered first, even for a remove. */
export function applyKeywordUpdate(ctx: ApplyContext, record: KeywordUpdateRecord): void {
  const raw = record instanceof RawKeywordUpdate ? record : undefined;
  const index = raw === undefined ? keywordIndexToUpdate(ctx, record.name) : rawKeywordIndex(ctx, raw.nameEntry);
  const extId = ctx.extIdByName(KEYWORDS_EXT_NAME);
  let ext = ctx.exts[extId];
  if (index >> 3 >= ext.recordSize) {
    if (record.modifyType === "remove") return;
    growBitmap(ctx, extId, ext);
    ext = ctx.exts[extId];
  }
  const byteOffset = ext.recordOffset + (index >> 3);
  const mask = 1 << (index & 7);
  if (raw !== undefined) {
    // Ranges read from the log's bytes (checked by the scan): no range objects.
    const view = raw.view;
    for (let p = raw.rangesStart; p < raw.rangesEnd; p += 8) {
      updateKeywordRange(ctx, record, index, byteOffset, mask, view.getUint32(p, true), view.getUint32(p + 4, true));
    }
  } else {
    for (const r of record.ranges) updateKeywordRange(ctx, record, index, byteOffset, mask, r.uid1, r.uid2);
  }
}

/** The index of keyword `name`, registered first when new. Throws LogCorruptedError for a name Dovecot refuses. */
function keywordIndexToUpdate(ctx: ApplyContext, name: string): number {
  if (name === "" || name.includes("\0")) throw ctx.corrupt("invalid keyword name");
  const index = keywordIndex(ctx.keywords, name);
  return index < 0 ? addKeyword(ctx, name) : index;
}

/**
 * keywordIndexToUpdate for a raw record's name: remembered on the name
 * cache's entry with the keyword list it holds for. Lists only grow, and a
 * list changed within a fold is another object, so the same list object
 * gives the same index.
 */
function rawKeywordIndex(ctx: ApplyContext, entry: KeywordName): number {
  const keywords = ctx.keywords;
  if (entry.keywords === keywords) return entry.index;
  const index = keywordIndexToUpdate(ctx, entry.name);
  // Read again: registering the name made the list the draft's.
  entry.keywords = ctx.keywords;
  entry.index = index;
  return index;
}

/** Sets or clears keyword `index` (its bit: byteOffset in each row, mask) on the messages uid1..uid2. */
function updateKeywordRange(ctx: ApplyContext, record: KeywordUpdateRecord, index: number, byteOffset: number, mask: number, uid1: number, uid2: number): void {
  const records = ctx.records;
  const first = records.firstOfUids(uid1, uid2);
  if (first < 0) return;
  const last = records.lastOfUids(first, uid1, uid2);
  raiseMessageModseqs(ctx, first, last, ctx.entry.modseq);
  const add = record.modifyType === "add";
  const fx = ctx.effects;
  // The registered spelling: the one every reader of the state sees.
  const keyword = fx === undefined ? "" : ctx.keywords[index];
  const external = record.external;
  const editor = ctx.edit();
  const rs = editor.recordSize;
  const cur = editor.span(first, last);
  do {
    // The record index of leaf row i (effects only).
    const leafStart = cur.first - cur.from;
    for (let i = cur.from; i <= cur.to; i++) {
      const at = i * rs + byteOffset;
      const value = add ? cur.bytes[at] | mask : cur.bytes[at] & ~mask;
      if (value === cur.bytes[at]) continue;
      cur.writable();
      cur.bytes[at] = value;
      fx?.keyword(leafStart + i, cur.words[(i * rs) >>> 2], keyword, record.modifyType, external);
    }
  } while (cur.next());
}

/** KEYWORD_RESET: clear every keyword of the messages in the ranges. */
export function applyKeywordReset(ctx: ApplyContext, record: KeywordResetRecord): void {
  const extId = ctx.extIdByName(KEYWORDS_EXT_NAME);
  if (extId < 0) return;
  const ext = ctx.exts[extId];
  const fx = ctx.effects;
  for (const r of record.ranges) {
    const range = ctx.records.rangeOfUids(r.uid1, r.uid2);
    if (range === undefined) continue;
    raiseMessageModseqs(ctx, range[0], range[1], ctx.entry.modseq);
    const editor = ctx.edit();
    const rs = editor.recordSize;
    let indexStart = range[0];
    editor.forRange(range[0], range[1], (cur, from, to) => {
      // The record index of leaf row i is indexStart + i - from (effects only).
      const leafStart = indexStart - from;
      indexStart += to - from + 1;
      for (let i = from; i <= to; i++) {
        const at = i * rs + ext.recordOffset;
        if (cur.bytes.subarray(at, at + ext.recordSize).every((b) => b === 0)) continue;
        cur.writable();
        cur.bytes.fill(0, at, at + ext.recordSize);
        fx?.keywordsReset(leafStart + i, cur.words[(i * rs) >>> 2], record.external);
      }
    });
  }
}

/** The bitmap is too small for a known keyword: an internal intro grows it, header size unchanged. */
function growBitmap(ctx: ApplyContext, extId: number, ext: ExtensionInfo): void {
  applyIntro(
    ctx,
    {
      extId,
      resetId: ext.resetId,
      hdrSize: ext.hdrSize,
      recordSize: keywordsRecordSize(ctx.keywords.length),
      recordAlign: 1,
      flags: 0,
      name: "",
    },
    true,
  );
}

/**
 * keywords_header_add: appends `name` to the header (creating the extension
 * if needed) and returns its index. The new header data is count+1, every
 * {0, name_offset} pair, every name NUL-terminated, padded to 4; when it does
 * not fit, or the bitmap is too small, the extension is resized to data + 128
 * bytes by an internal intro. Bytes after the new data are left as they were.
 */
function addKeyword(ctx: ApplyContext, name: string): number {
  const extId = ctx.extIdByName(KEYWORDS_EXT_NAME);
  const ext = extId < 0 ? undefined : ctx.exts[extId];
  const oldData = ext === undefined ? undefined : ctx.hdrData(extId).subarray(0, ext.hdrSize);
  const oldCount = oldData === undefined || oldData.length < 4 ? 0 : new DataView(oldData.buffer, oldData.byteOffset).getUint32(0, true);
  const count = oldCount + 1;
  let recs: Uint8Array;
  let names: Uint8Array;
  if (oldCount > 0 && oldData !== undefined) {
    const view = new DataView(oldData.buffer, oldData.byteOffset, oldData.length);
    const namesStart = 4 + oldCount * 8;
    const lastOffset = view.getUint32(namesStart - 4, true);
    let end = namesStart + lastOffset;
    while (end < oldData.length && oldData[end] !== 0) end++;
    if (end >= oldData.length) throw ctx.corrupt("keywords header names run past its size");
    recs = oldData.subarray(4, namesStart);
    names = oldData.subarray(namesStart, end + 1);
  } else {
    recs = new Uint8Array(0);
    names = new Uint8Array(0);
  }
  const used = 4 + recs.length + 8 + names.length + name.length + 1;
  const data = new Uint8Array((used + 3) & ~3);
  const out = new DataView(data.buffer);
  out.setUint32(0, count, true);
  data.set(recs, 4);
  out.setUint32(4 + recs.length + 4, names.length, true);
  const namesAt = 4 + recs.length + 8;
  data.set(names, namesAt);
  for (let i = 0; i < name.length; i++) data[namesAt + names.length + i] = name.charCodeAt(i) & 0xff;

  if (ext === undefined || data.length > ext.hdrSize || ext.recordSize * 8 < count) {
    applyIntro(
      ctx,
      {
        extId: ext === undefined ? EXT_ID_BY_NAME : extId,
        resetId: ext === undefined ? 0 : ext.resetId,
        hdrSize: data.length + KEYWORDS_HDR_SLACK,
        recordSize: keywordsRecordSize(count),
        recordAlign: 1,
        flags: 0,
        name: ext === undefined ? KEYWORDS_EXT_NAME : "",
      },
      true,
    );
  }
  const targetId = ctx.extIdByName(KEYWORDS_EXT_NAME);
  const hdrData = ctx.hdrData(targetId).slice();
  hdrData.set(data, 0);
  ctx.setHdrData(targetId, hdrData);
  ctx.addKeywordName(name);
  return count - 1;
}
