/**
 * HEADER_UPDATE (transaction-log.md §4.5): byte patches of the base header,
 * and the log_file_tail_offset bookkeeping of transaction-log.md §7.
 */
import type { Draft } from "immer";
import type { LogEntry, LogRecord } from "../log/types.js";
import type { ApplyContext } from "./apply-context.js";
import {
  BASE_HEADER_SIZE,
  TAIL_OFFSET_FIELD_OFFSET,
  readBaseHeader,
  writeBaseHeader,
  type IndexHeader,
} from "./base-header.js";
import { fullHeader } from "./header-layout.js";
import type { IndexMapState } from "./state.js";

type HeaderUpdateRecord = Extract<LogRecord, { type: "header-update" }>;

/**
 * Fields a patch may not change: they describe the file's structure or
 * follow from the records, and Dovecot's map breaks (fsck) when they are
 * patched to something else.
 */
const STRUCTURAL_FIELDS = [
  "majorVersion",
  "minorVersion",
  "baseHeaderSize",
  "compatFlags",
  "headerSize",
  "recordSize",
  "messagesCount",
] as const satisfies ReadonlyArray<keyof IndexHeader>;

/**
 * Applies the patches to the header bytes. As in Dovecot, next_uid never
 * goes down (a lower value is ignored) and log_file_tail_offset is left
 * alone: the tail moves only through `trackTailOffset`.
 */
export function applyHeaderUpdate(ctx: ApplyContext, record: HeaderUpdateRecord): void {
  const draft = ctx.draft;
  const before = fullHeader({ header: ctx.header, extensions: ctx.exts, records: ctx.records });
  const baseSize = before.baseHeaderSize;
  const bytes = new Uint8Array(baseSize);
  const view = new DataView(bytes.buffer);
  writeBaseHeader(view, 0, before);
  bytes.set(draft.baseHeaderExtra, BASE_HEADER_SIZE);
  for (const p of record.patches) {
    if (p.offset >= baseSize || p.offset + p.data.length > baseSize) {
      throw ctx.corrupt(`Header update outside range: ${p.offset} + ${p.data.length} > ${baseSize}`);
    }
    bytes.set(p.data, p.offset);
  }
  const after = readBaseHeader(view, 0);
  for (const field of STRUCTURAL_FIELDS) {
    if (after[field] !== before[field]) throw ctx.corrupt(`header update changes ${field} from ${before[field]} to ${after[field]}`);
  }
  const h = ctx.header;
  for (const key of Object.keys(before) as Array<keyof IndexHeader>) {
    if ((STRUCTURAL_FIELDS as readonly string[]).includes(key)) continue;
    if (key === "dayFirstUid" || key === "logFileTailOffset") continue;
    if (key === "nextUid" && after.nextUid < before.nextUid) continue;
    const target = h as unknown as Record<string, unknown>;
    if (target[key] !== after[key]) target[key] = after[key];
  }
  if (after.dayFirstUid.some((v, i) => v !== before.dayFirstUid[i])) h.dayFirstUid = [...after.dayFirstUid];
  const extra = bytes.subarray(BASE_HEADER_SIZE);
  if (extra.some((b, i) => b !== draft.baseHeaderExtra[i])) draft.baseHeaderExtra = extra.slice();
}

/** The tail offset a HEADER_UPDATE's first patch carries, if it covers the whole field. */
function tailOffsetIn(record: HeaderUpdateRecord): number | undefined {
  const p = record.patches[0];
  if (p === undefined) return undefined;
  if (p.offset > TAIL_OFFSET_FIELD_OFFSET || p.offset + p.data.length < TAIL_OFFSET_FIELD_OFFSET + 4) return undefined;
  return new DataView(p.data.buffer, p.data.byteOffset, p.data.length).getUint32(TAIL_OFFSET_FIELD_OFFSET - p.offset, true);
}

/**
 * The log reader's max_tail_offset, kept in log_file_tail_offset (transaction-
 * log.md §7): only EXTERNAL records count. An EXTERNAL HEADER_UPDATE whose
 * first patch covers the field raises the tail (never lowers it; a value past
 * the record's own end is corruption); any other EXTERNAL record that starts
 * exactly at the tail is stepped over, since the backend never has to sync it.
 *
 * Dovecot starts this tracking afresh in each process; here it continues from
 * the checkpoint's tail, so a replay and a checkpoint plus the rest agree.
 */
export function trackTailOffset(ctx: ApplyContext): void {
  const entry: LogEntry = ctx.entry;
  const record = entry.record;
  const h: Draft<IndexMapState>["header"] = ctx.header;
  if (!record.external || entry.position.fileSeq !== h.logFileSeq) return;
  const end = entry.position.offset + entry.size;
  if (record.type === "header-update") {
    const tail = tailOffsetIn(record);
    if (tail !== undefined) {
      if (tail < h.logFileTailOffset) return;
      if (tail > end) throw ctx.corrupt(`log_file_tail_offset ${tail} goes past sync offset ${end}`);
      h.logFileTailOffset = tail;
      return;
    }
  }
  if (h.logFileTailOffset === entry.position.offset) h.logFileTailOffset = end;
}
