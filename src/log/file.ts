import { LogCorruptedError } from "../shared/errors.js";
import { dataViewOf } from "./bytes.js";
import { decodeRecord, decodesToItself, recordTypeOf, typeFieldOf } from "./codec.js";
import { decodeLogHeader } from "./header.js";
import { nextModseq, skimModseq } from "./modseq.js";
import { ScanPool } from "./scan-reuse.js";
import type { PayloadSource } from "./records/context.js";
import { decodeRecordSize } from "./size-encoding.js";
import { RecordType, TYPE_EXTERNAL, TYPE_MASK, type LogEntry, type LogFileHeader, type LogRecord, type LogTransaction } from "./types.js";

/** One log file's bytes, decoded up to its last complete transaction. */
export interface ParsedLogFile {
  path: string;
  header: LogFileHeader;
  transactions: LogTransaction[];
  /**
   * End of the last complete transaction (Dovecot's sync_offset). Bytes after
   * it are a transaction still being written, or garbage left by a crash.
   */
  syncOffset: number;
  /** The running modseq at syncOffset. */
  endModseq: bigint;
  /** Bytes after syncOffset. */
  trailingBytes: number;
}

/**
 * Decodes a whole log file. Stops quietly at an unfinished write (a size
 * field that is zero, a record or a boundary-framed transaction reaching past
 * the end of the file) and throws LogCorruptedError for anything Dovecot
 * would call corrupted. Work and memory are bounded by the file's size: every
 * record advances by at least 12 bytes.
 */
export function parseLogBytes(bytes: Uint8Array, path: string): ParsedLogFile {
  const header = decodeLogHeader(bytes, path);
  const transactions: LogTransaction[] = [];
  const { syncOffset, modseq } = scanTransactions(bytes, header, path, (tx) => transactions.push(tx));
  return { path, header, transactions, syncOffset, endModseq: modseq, trailingBytes: bytes.length - syncOffset };
}

/**
 * Walks complete transactions from the header's end (or from `resume`, a
 * transaction start whose running modseq is known; `resume.delta` is the file
 * offset of bytes[0] when `bytes` is only the file's tail), calling `onTransaction`
 * for each, so every entry carries the modseq Dovecot would give it.
 */
export function scanTransactions(
  bytes: Uint8Array,
  header: LogFileHeader,
  path: string,
  onTransaction: (tx: LogTransaction) => void,
  resume?: { offset: number; modseq: bigint; delta?: number },
  /**
   * `reuse`: hand the same transaction, entry and (flag, keyword and ext-rec update)
   * record objects to every call, overwritten by the next one (see
   * scan-reuse.ts), those records possibly raw (left in the log's bytes);
   * for a consumer that keeps nothing of a transaction, or copies what it
   * keeps with detachTransaction (detach.ts).
   * `skimBefore` (a file offset): transactions that end at or before it are
   * walked for their modseq only, their records decoded only where the
   * modseq depends on the payload, and handed over with no entries (the log
   * before a checkpoint, which a load only needs the modseq of).
   */
  options: {
    reuse?: boolean;
    skimBefore?: number;
    /**
     * `written`: the records `bytes` were just encoded from, in order (an
     * append's own): those that decodesToItself stand for their bytes
     * instead of a decode of them. Not with `reuse`. Ignored when it holds
     * a BOUNDARY: the encoder's own frames are no entries, so with a
     * caller's one among them the records no longer match the entries one
     * for one, and everything is decoded.
     */
    written?: readonly LogRecord[];
    /**
     * `fill`: `bytes` holds only the ranges asked for (LazyLogBytes): the scan
     * calls fill(start, end) (offsets into `bytes`) before it reads any byte.
     * A skimmed transaction asks for its record headers and the payloads its
     * modseq depends on; every other one, for all of its bytes.
     */
    fill?: (start: number, end: number) => void;
  } = {},
): { syncOffset: number; modseq: bigint } {
  // A Buffer's slice() shares memory; decode from a plain Uint8Array so that
  // record payloads are copies, never views of the caller's buffer.
  bytes = plainBytes(bytes);
  const view = dataViewOf(bytes);
  const fileSeq = header.fileSeq;
  const delta = resume?.delta ?? 0;
  const src: PayloadSource = { bytes, view, start: 0, end: 0, path, fileSeq, extRecordSize: undefined, delta };
  let pos = (resume?.offset ?? header.hdrSize) - delta;
  let modseq = resume?.modseq ?? header.initialModseq;
  const length = bytes.length;
  const pool = options.reuse === true ? new ScanPool() : undefined;
  const written = options.written?.some((r) => r.type === "boundary") ? undefined : options.written;
  let recordNo = 0;
  const skimBefore = options.skimBefore ?? -1;
  const fill = options.fill ?? fillNothing;

  while (pos + 8 <= length) {
    fill(pos, pos + 8);
    const size = decodeRecordSize(bytes, pos);
    if (size === 0 || pos + size > length) break;
    checkRecordSize(size, path, fileSeq, pos + delta);
    const typeField = view.getUint32(pos + 4, true);
    const txStart = pos;
    let txEnd = pos + size;
    let external: boolean;
    let framed = false;
    const entries: LogEntry[] = pool === undefined ? [] : pool.tx.entries;
    // Written by index and cut once: a reused array keeps its length from one transaction to the next.
    let count = 0;

    if ((typeField & TYPE_MASK) === RecordType.BOUNDARY) {
      fill(pos + 8, pos + size);
      if (size !== 12) {
        throw new LogCorruptedError(`boundary record of ${size} bytes`, { path, fileSeq, offset: pos + delta });
      }
      const txSize = view.getUint32(pos + 8, true);
      if (pos + txSize > length) break; // the transaction is still being written
      if (txSize < size) {
        throw new LogCorruptedError(`boundary covers ${txSize} bytes, less than itself`, { path, fileSeq, offset: pos + delta });
      }
      txEnd = pos + txSize;
      external = true;
      framed = true;
      pos += size;
      src.extRecordSize = undefined;
      const skim = txEnd + delta <= skimBefore;
      if (!skim) fill(pos, txEnd);
      while (pos < txEnd) {
        if (skim) fill(pos, pos + 8);
        const recSize = decodeRecordSize(bytes, pos);
        if (recSize === 0 || pos + recSize > txEnd) {
          throw new LogCorruptedError("record crosses the end of its transaction's boundary", {
            path, fileSeq, offset: pos + delta,
          });
        }
        checkRecordSize(recSize, path, fileSeq, pos + delta);
        const recType = view.getUint32(pos + 4, true);
        if (skim) {
          modseq = skimEntryAt(src, pos, recSize, modseq, header, fill);
          external &&= (recType & TYPE_EXTERNAL) !== 0;
          recordNo++;
        } else {
          const entry = decodeEntryAt(src, pos, recSize, modseq, header, pool, count, written?.[recordNo++]);
          modseq = entry.modseq;
          external &&= entry.record.external;
          entries[count++] = entry;
        }
        if ((recType & TYPE_MASK) === RecordType.BOUNDARY) {
          throw new LogCorruptedError("boundary inside a transaction", { path, fileSeq, offset: pos + delta });
        }
        pos += recSize;
      }
    } else if (txEnd + delta <= skimBefore) {
      modseq = skimEntryAt(src, pos, size, modseq, header, fill);
      external = (typeField & TYPE_EXTERNAL) !== 0;
      recordNo++;
      pos += size;
    } else {
      fill(pos, pos + size);
      const entry = decodeEntryAt(src, pos, size, modseq, header, pool, 0, written?.[recordNo++]);
      modseq = entry.modseq;
      external = entry.record.external;
      entries[count++] = entry;
      pos += size;
    }
    if (entries.length !== count) entries.length = count;
    if (pool === undefined) {
      onTransaction({
        position: { fileSeq, offset: txStart + delta },
        end: { fileSeq, offset: txEnd + delta },
        entries,
        modseq,
        external,
        framed,
      });
    } else {
      onTransaction(pool.transaction(fileSeq, txStart + delta, txEnd + delta, modseq, external, framed));
    }
  }
  return { syncOffset: pos + delta, modseq };
}

function checkRecordSize(size: number, path: string, fileSeq: number, offset: number): void {
  if (size <= 8) {
    throw new LogCorruptedError(`record size ${size} leaves no payload`, { path, fileSeq, offset });
  }
}

/**
 * The entry at `pos`: a new object, or entry `index` of `pool` when the scan
 * reuses objects. Its record is `written` (the record these bytes were
 * encoded from) when that decodes to itself, else decoded.
 */
function decodeEntryAt(
  src: PayloadSource,
  pos: number,
  size: number,
  modseq: bigint,
  header: LogFileHeader,
  pool: ScanPool | undefined,
  index: number,
  written: LogRecord | undefined,
): LogEntry {
  src.start = pos + 8;
  src.end = pos + size;
  const typeField = src.view.getUint32(pos + 4, true);
  const record =
    written !== undefined && typeFieldOf(written) === typeField && decodesToItself(written, src.extRecordSize) ? written
    : pool === undefined ? decodeRecord(typeField, src, pos)
    : pool.decode(index, typeField, src, pos);
  if (record.type === "ext-intro") {
    const last = record.intros[record.intros.length - 1];
    src.extRecordSize = last?.recordSize;
  }
  const next = nextModseq(modseq, record, header);
  if (pool === undefined) return { position: { fileSeq: src.fileSeq, offset: pos + src.delta }, size, modseq: next, record };
  return pool.entry(index, src.fileSeq, pos + src.delta, size, next, record);
}

/**
 * The modseq after the record at `pos`, for a skimmed transaction: from its
 * type alone where that tells, else (and for ext intros, whose record size
 * later EXT_REC_UPDATEs of the transaction are read with) from the decoded record.
 */
function skimEntryAt(
  src: PayloadSource, pos: number, size: number, modseq: bigint, header: LogFileHeader, fill: (start: number, end: number) => void,
): bigint {
  const typeField = src.view.getUint32(pos + 4, true);
  const type = recordTypeOf(typeField, src, pos);
  const known = type === "ext-intro" ? undefined : skimModseq(modseq, type, (typeField & TYPE_EXTERNAL) !== 0);
  if (known !== undefined) return known;
  fill(pos + 8, pos + size);
  return decodeEntryAt(src, pos, size, modseq, header, undefined, 0, undefined).modseq;
}

/** The fill of a scan over bytes read whole. */
function fillNothing(): void {}

function plainBytes(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
