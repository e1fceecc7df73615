/**
 * Reading an index map state: the header, messages by sequence number or
 * uid, keywords, extensions. Sequence numbers are 1-based, as in IMAP and
 * Dovecot. Nothing here allocates per message except the returned objects.
 */
import type { LogPosition } from "../log/types.js";
import { headerHighestModseq, modseqFieldOffset, readU64 } from "./apply-modseq.js";
import type { IndexHeader } from "./base-header.js";
import { KEYWORDS_EXT_NAME } from "./ext-registry.js";
import { fullHeader } from "./header-layout.js";
import { extIdOf, type ExtensionInfo, type IndexMapState } from "./state.js";

/** One message as the index map knows it. */
export interface MessageRecord {
  /** 1-based sequence number. */
  readonly seq: number;
  readonly uid: number;
  /** The flags byte (MailFlag bits, including BACKEND/DIRTY). */
  readonly flags: number;
  readonly keywords: string[];
  /**
   * Modseq of the message's last change; the mailbox's highest modseq when
   * the `modseq` extension is absent (or has not reached this message yet).
   */
  readonly modseq: bigint;
  /** A copy of the message's field of extension `name`, or undefined if it has none. */
  ext(name: string): Uint8Array | undefined;
}

/** The full base header, including header_size, record_size and messages_count. */
export function getHeader(state: IndexMapState): IndexHeader {
  return fullHeader(state);
}

export function messageCount(state: IndexMapState): number {
  return state.records.count;
}

/** The log position the state reflects (just past its last transaction). */
export function position(state: IndexMapState): LogPosition {
  return { fileSeq: state.header.logFileSeq, offset: state.header.logFileHeadOffset };
}

export function keywordNames(state: IndexMapState): readonly string[] {
  return state.keywords;
}

/** Extensions in ext_id order. */
export function extensions(state: IndexMapState): readonly ExtensionInfo[] {
  return state.extensions;
}

/** The extension called `name`, if present. */
export function extension(state: IndexMapState, name: string): ExtensionInfo | undefined {
  const id = extIdOf(state, name);
  return id < 0 ? undefined : state.extensions[id];
}

/** The extension's header data (hdr_size bytes, a view: do not modify). */
export function extensionHeader(ext: ExtensionInfo): Uint8Array {
  return ext.hdrData.subarray(0, ext.hdrSize);
}

/**
 * The mailbox's HIGHESTMODSEQ as Dovecot reports it: the modseq extension
 * header's highest_modseq when set, otherwise the log's running modseq.
 */
export function highestModseq(state: IndexMapState): bigint {
  const fromHeader = headerHighestModseq(state.extensions);
  return fromHeader !== 0n ? fromHeader : state.logModseq;
}

/** The uid at sequence `seq` (1-based), or 0 when out of range. */
export function uidAt(state: IndexMapState, seq: number): number {
  return seq >= 1 && seq <= state.records.count ? state.records.uidAt(seq - 1) : 0;
}

/** The sequence number of `uid`, or 0 when the message does not exist. */
export function seqOfUid(state: IndexMapState, uid: number): number {
  return state.records.indexOfUid(uid) + 1;
}

/**
 * Sequence numbers of the first and last message with uid1 ≤ uid ≤ uid2
 * (Dovecot's mail_index_lookup_seq_range), or undefined when there is none.
 */
export function seqRangeOfUids(state: IndexMapState, uid1: number, uid2: number): { seq1: number; seq2: number } | undefined {
  const range = state.records.rangeOfUids(uid1, uid2);
  return range === undefined ? undefined : { seq1: range[0] + 1, seq2: range[1] + 1 };
}

/**
 * The messages IMAP reports as \Recent, as Dovecot's STATUS RECENT counts
 * them: those with first_recent_uid ≤ uid < next_uid (index_sync_update_recent_count).
 */
export function recentCount(state: IndexMapState): number {
  const h = state.header;
  const range = seqRangeOfUids(state, Math.max(h.firstRecentUid, 1), h.nextUid);
  return range === undefined ? 0 : range.seq2 - range.seq1 + 1;
}

/**
 * The `name` extension's field of the message at sequence `seq` (a copy),
 * or undefined (no such message, no such extension, or no per-message
 * field): one field without building the whole record.
 */
export function extRecordAt(state: IndexMapState, seq: number, name: string): Uint8Array | undefined {
  return extRecordViewAt(state, seq, name)?.slice();
}

/**
 * As extRecordAt, but a view into the record store instead of a copy:
 * decode it at once, never keep or modify it (per-message hot paths).
 */
export function extRecordViewAt(state: IndexMapState, seq: number, name: string): Uint8Array | undefined {
  return extRecordView(state, extension(state, name), seq);
}

/** extRecordViewAt for many messages: the extension is looked up once. */
export function extRecordViewReader(state: IndexMapState, name: string): (seq: number) => Uint8Array | undefined {
  const e = extension(state, name);
  return (seq) => extRecordView(state, e, seq);
}

function extRecordView(state: IndexMapState, e: ExtensionInfo | undefined, seq: number): Uint8Array | undefined {
  if (seq < 1 || seq > state.records.count) return undefined;
  if (e === undefined || e.recordSize === 0) return undefined;
  const row = state.records.row(seq - 1);
  return row.bytes.subarray(row.offset + e.recordOffset, row.offset + e.recordOffset + e.recordSize);
}

/** The message at sequence `seq` (1-based), or undefined. */
export function recordAt(state: IndexMapState, seq: number): MessageRecord | undefined {
  if (seq < 1 || seq > state.records.count) return undefined;
  return buildRecord(state, seq);
}

/** The message with `uid`, or undefined. */
export function lookupUid(state: IndexMapState, uid: number): MessageRecord | undefined {
  const index = state.records.indexOfUid(uid);
  return index < 0 ? undefined : buildRecord(state, index + 1);
}

/** A message without keywords: one shared empty list, not an array per message. */
export const NO_KEYWORDS: readonly string[] = Object.freeze([]);

/** Keyword names set in the bitmap of the message at 0-based `index`. */
export function keywordsAt(state: IndexMapState, index: number): string[] {
  const ext = extension(state, KEYWORDS_EXT_NAME);
  if (ext === undefined || ext.recordSize === 0) return [];
  const row = state.records.row(index);
  const names: string[] = [];
  for (let k = 0; k < state.keywords.length && k >> 3 < ext.recordSize; k++) {
    if (row.bytes[row.offset + ext.recordOffset + (k >> 3)] & (1 << (k & 7))) names.push(state.keywords[k]);
  }
  return names;
}

/** The modseq of the message at 0-based `index` (see MessageRecord.modseq). */
export function modseqAt(state: IndexMapState, index: number): bigint {
  const offset = modseqFieldOffset(state.extensions);
  if (offset < 0) return highestModseq(state);
  const row = state.records.row(index);
  const value = readU64(row.words, row.offset + offset);
  return value === 0n ? highestModseq(state) : value;
}

function buildRecord(state: IndexMapState, seq: number): MessageRecord {
  const index = seq - 1;
  const row = state.records.row(index);
  return {
    seq,
    uid: row.words[row.offset >>> 2],
    flags: row.bytes[row.offset + 4],
    keywords: keywordsAt(state, index),
    modseq: modseqAt(state, index),
    ext: (name: string) => extRecordAt(state, seq, name),
  };
}
