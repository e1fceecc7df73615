/**
 * Builds LogEntry / LogTransaction objects by hand for projection tests:
 * positions advance through one log file as the records would lie on disk
 * (record sizes from the record codec, a 12-byte BOUNDARY in front of framed
 * transactions), and each entry carries the running modseq of
 * transaction-log.md §8.
 */
import { encodeRecord } from "../../../src/log/codec.js";
import { nextModseq } from "../../../src/log/modseq.js";
import {
  EXT_ID_BY_NAME,
  type LogEntry,
  type LogFileHeader,
  type LogRecord,
  type LogRecordBody,
  type LogTransaction,
} from "../../../src/log/types.js";

const BOUNDARY_SIZE = 12;

function fileHeader(fileSeq: number, initialModseq: bigint): LogFileHeader {
  return {
    majorVersion: 1,
    minorVersion: 3,
    hdrSize: 40,
    indexId: 1,
    fileSeq,
    prevFileSeq: 0,
    prevFileOffset: 0,
    createStamp: 1,
    initialModseq,
    compatFlags: 1,
  };
}

export class LogBuilder {
  fileSeq: number;
  offset = 40;
  modseq: bigint;

  constructor(opts: { fileSeq?: number; initialModseq?: bigint } = {}) {
    this.fileSeq = opts.fileSeq ?? 2;
    this.modseq = opts.initialModseq ?? 1n;
  }

  /** The next record as an entry at the current position (does not frame it). */
  entry(record: LogRecord): LogEntry {
    const size = encodeRecord(record).length;
    this.modseq = nextModseq(this.modseq, record, fileHeader(this.fileSeq, 1n));
    const entry: LogEntry = { position: { fileSeq: this.fileSeq, offset: this.offset }, size, modseq: this.modseq, record };
    this.offset += size;
    return entry;
  }

  /** A transaction of `records`, framed by a boundary when there is more than one. */
  tx(...records: LogRecord[]): LogTransaction {
    const position = { fileSeq: this.fileSeq, offset: this.offset };
    const framed = records.length > 1;
    if (framed) this.offset += BOUNDARY_SIZE;
    const entries = records.map((r) => this.entry(r));
    return {
      position,
      end: { fileSeq: this.fileSeq, offset: this.offset },
      entries,
      modseq: this.modseq,
      external: records.every((r) => r.external),
      framed,
    };
  }

  /** Continue in a new log file (rotation): file_seq + 1, offset back to the header's end. */
  rotate(): void {
    this.fileSeq++;
    this.offset = 40;
  }
}

function rec<B extends LogRecordBody>(body: B, external: boolean): B & { external: boolean; sync: boolean } {
  return { ...body, external, sync: false };
}

type Ranges = ReadonlyArray<readonly [number, number]>;
const ranges = (r: Ranges) => r.map(([uid1, uid2]) => ({ uid1, uid2 }));

/** Record constructors with Dovecot's usual EXTERNAL choices as defaults. */
export const R = {
  append: (msgs: ReadonlyArray<number | readonly [number, number]>, external = true) =>
    rec(
      { type: "append", messages: msgs.map((m) => (typeof m === "number" ? { uid: m, flags: 0 } : { uid: m[0], flags: m[1] })) },
      external,
    ),
  flags: (uid1: number, uid2: number, addFlags: number, removeFlags: number, opts: { external?: boolean; modseqInc?: number } = {}) =>
    rec(
      { type: "flag-update", updates: [{ uid1, uid2, addFlags, removeFlags, modseqIncFlag: opts.modseqInc ?? 0 }] },
      opts.external ?? false,
    ),
  keyword: (modifyType: "add" | "remove", name: string, r: Ranges, external = false) =>
    rec({ type: "keyword-update", modifyType, name, ranges: ranges(r) }, external),
  keywordReset: (r: Ranges, external = false) => rec({ type: "keyword-reset", ranges: ranges(r) }, external),
  expunge: (r: Ranges, external = true) => rec({ type: "expunge", ranges: ranges(r) }, external),
  expungeGuid: (uids: readonly number[], external = true) =>
    rec({ type: "expunge-guid", expunges: uids.map((uid) => ({ uid, guid: new Uint8Array(16) })) }, external),
  intro: (
    i: { name?: string; extId?: number; resetId?: number; hdrSize?: number; recordSize?: number; recordAlign?: number; flags?: number },
    external = true,
  ) =>
    rec(
      {
        type: "ext-intro",
        intros: [
          {
            extId: i.extId ?? EXT_ID_BY_NAME,
            resetId: i.resetId ?? 0,
            hdrSize: i.hdrSize ?? 0,
            recordSize: i.recordSize ?? 0,
            recordAlign: i.recordAlign ?? 0,
            flags: i.flags ?? 1,
            name: i.extId === undefined ? (i.name ?? "") : "",
          },
        ],
      },
      external,
    ),
  extReset: (newResetId: number, preserveData = 0, external = true) => rec({ type: "ext-reset", newResetId, preserveData }, external),
  extHdr: (offset: number, data: ArrayLike<number>, external = true) =>
    rec({ type: "ext-hdr", patches: [{ offset, data: Uint8Array.from(data) }] }, external),
  extHdr32: (offset: number, data: ArrayLike<number>, external = true) =>
    rec({ type: "ext-hdr32", patches: [{ offset, data: Uint8Array.from(data) }] }, external),
  extRec: (recordSize: number, updates: ReadonlyArray<readonly [number, ArrayLike<number>]>, external = true) =>
    rec({ type: "ext-rec", recordSize, updates: updates.map(([uid, d]) => ({ uid, data: Uint8Array.from(d) })) }, external),
  atomicInc: (updates: ReadonlyArray<readonly [number, number]>, external = true) =>
    rec({ type: "ext-atomic-inc", updates: updates.map(([uid, diff]) => ({ uid, diff })) }, external),
  header: (offset: number, data: ArrayLike<number>, external = true) =>
    rec({ type: "header-update", patches: [{ offset, data: Uint8Array.from(data) }] }, external),
  headerU32: (offset: number, value: number, external = true) => R.header(offset, u32(value), external),
  modseqUpdate: (updates: ReadonlyArray<readonly [number, bigint]>, external = true) =>
    rec({ type: "modseq-update", updates: updates.map(([uid, modseq]) => ({ uid, modseq })) }, external),
  indexDeleted: (external: boolean) => rec({ type: "index-deleted" }, external),
  indexUndeleted: (external: boolean) => rec({ type: "index-undeleted" }, external),
  attribute: (external = false) =>
    rec({ type: "attribute-update", changes: [{ op: "+", scope: "p", key: "comment", timestamp: 1, valueLength: 3 }] }, external),
};

/** Little-endian u32 bytes. */
export function u32(value: number): number[] {
  return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];
}

/** Little-endian u64 bytes. */
export function u64(value: bigint): number[] {
  const out: number[] = [];
  for (let i = 0n; i < 8n; i++) out.push(Number((value >> (i * 8n)) & 0xffn));
  return out;
}

/** The intro + header update Dovecot writes when CONDSTORE is first used (modseq tracking starts at `highest`). */
export function enableModseq(highest: bigint): LogRecord[] {
  return [
    R.intro({ name: "modseq", hdrSize: 16, recordSize: 8, recordAlign: 8 }, false),
    R.extHdr(0, [...u64(highest), ...u32(0), ...u32(0)], false),
  ];
}

/** Base-header field offsets used by tests (index-file.md §3). */
export const HDR = { uidValidity: 24, nextUid: 28, messagesCount: 32, tailOffset: 64, recordSize: 8, lastTempFileScan: 80 } as const;
