/**
 * The objects a reusing scan (scanTransactions with `reuse`) hands out again
 * for every transaction: the transaction, its entries and, for the record
 * types a busy log is made of (flag and keyword updates), the records
 * themselves. A full replay decodes a million records; with fresh objects
 * each, garbage collection was a good part of its time (issue #11). Dovecot
 * applies records straight from the file buffer for the same reason.
 * FLAG_UPDATE and KEYWORD_UPDATE records are checked but left in the bytes
 * too (RawFlagUpdate, RawKeywordUpdate): the replay reads their updates and
 * ranges from there, and a keyword's index from the name cache's entry.
 * EXT_REC_UPDATE records are not even split into entries: the reused record
 * points at them in the log's bytes (`packed`) and the replay applies them
 * from there (after an mdbox import, one entry per message per field: most
 * of a reopen's replay).
 *
 * Only for a consumer that is done with a transaction when its callback
 * returns (a replay folds it and keeps nothing): the next transaction
 * overwrites it. One that keeps a transaction copies it with
 * detachTransaction (detach.ts).
 */
import { decodeRecord } from "./codec.js";
import type { PayloadSource } from "./records/context.js";
import { decodeExtRecUpdateInto } from "./records/ext-rec-update.js";
import { checkFlagUpdateInto, RawFlagUpdate } from "./records/flag-update.js";
import { checkKeywordUpdateInto, KeywordNameCache, RawKeywordUpdate } from "./records/keyword-update.js";
import {
  RecordType, TYPE_EXTERNAL, TYPE_MASK, TYPE_SYNC, type LogEntry, type LogRecord, type LogTransaction, type PackedExtRecUpdates,
} from "./types.js";

type ExtRecRecord = Extract<LogRecord, { type: "ext-rec" }> & { packed: PackedExtRecUpdates };

/** One entry's place in the reused transaction, with its own records (two entries of a transaction never share one). */
interface Slot {
  entry: LogEntry;
  /** entry.position, writable. */
  position: { fileSeq: number; offset: number };
  flagUpdate: RawFlagUpdate;
  keywordUpdate: RawKeywordUpdate;
  extRec: ExtRecRecord;
}

const EMPTY = new Uint8Array(0);

export class ScanPool {
  private readonly start = { fileSeq: 0, offset: 0 };
  private readonly end = { fileSeq: 0, offset: 0 };
  /** The transaction handed to every callback. */
  readonly tx: LogTransaction = { position: this.start, end: this.end, entries: [], modseq: 0n, external: false, framed: false };

  /** Sets the transaction's fields (its entries are filled by `entry`) and returns it. */
  transaction(fileSeq: number, startOffset: number, endOffset: number, modseq: bigint, external: boolean, framed: boolean): LogTransaction {
    this.start.fileSeq = fileSeq;
    this.start.offset = startOffset;
    this.end.fileSeq = fileSeq;
    this.end.offset = endOffset;
    const tx = this.tx;
    tx.modseq = modseq;
    tx.external = external;
    tx.framed = framed;
    return tx;
  }
  private readonly slots: Slot[] = [];
  private readonly names = new KeywordNameCache();

  /** Entry `index` of the current transaction, with these fields. */
  entry(index: number, fileSeq: number, offset: number, size: number, modseq: bigint, record: LogRecord): LogEntry {
    const slot = this.slot(index);
    slot.position.fileSeq = fileSeq;
    slot.position.offset = offset;
    const entry = slot.entry;
    entry.size = size;
    entry.modseq = modseq;
    entry.record = record;
    return entry;
  }

  /**
   * Decodes the record at `headerOffset` (`src` set to its payload) for entry
   * `index`: flag and keyword updates into that entry's own record objects,
   * other types through decodeRecord as usual. Throws like decodeRecord.
   */
  decode(index: number, typeField: number, src: PayloadSource, headerOffset: number): LogRecord {
    const masked = typeField & TYPE_MASK;
    let record: LogRecord;
    if (masked === RecordType.FLAG_UPDATE) record = checkFlagUpdateInto(src, this.slot(index).flagUpdate);
    else if (masked === RecordType.KEYWORD_UPDATE) record = checkKeywordUpdateInto(src, this.slot(index).keywordUpdate, this.names);
    else if (masked === RecordType.EXT_REC_UPDATE) record = decodeExtRecUpdateInto(src, this.slot(index).extRec) as ExtRecRecord;
    else return decodeRecord(typeField, src, headerOffset);
    record.external = (typeField & TYPE_EXTERNAL) !== 0;
    record.sync = (typeField & TYPE_SYNC) !== 0;
    return record;
  }

  private slot(index: number): Slot {
    let slot = this.slots[index];
    if (slot === undefined) {
      // Created with every field, so each keeps one shape.
      const position = { fileSeq: 0, offset: 0 };
      slot = {
        entry: { position, size: 0, modseq: 0n, record: { type: "boundary", size: 0, external: true, sync: false } },
        position,
        flagUpdate: new RawFlagUpdate(),
        keywordUpdate: new RawKeywordUpdate(),
        extRec: {
          type: "ext-rec", recordSize: 0, updates: [], external: false, sync: false,
          packed: { bytes: EMPTY, view: new DataView(EMPTY.buffer), start: 0, count: 0, entrySize: 0 },
        },
      };
      this.slots[index] = slot;
    }
    return slot;
  }
}
