/**
 * Folding a big EXT_REC_UPDATE as a column (issue #11): a storage rebuild
 * that creates a log writes one entry per message for each of its record
 * extensions (the map's `map` and `ref`, a mailbox's `mdbox` and `guid`),
 * for a run of uids it appended in the same write. Dovecot writes the same
 * records to its new logs, but builds its in-memory index from what it
 * found, not by applying them. Here the state takes each such record's data
 * in one copy per row instead of the per-entry walk of applyExtRecUpdate;
 * the state is the one the fold of the record would give (the rows exist,
 * are fresh, and take the entry's bytes zero-padded to the field).
 */
import { produce, castDraft } from "immer";
import type { LogRecord, LogTransaction, PackedExtRecUpdates } from "../log/types.js";
import type { IndexMapState } from "./state.js";
import { extIdOf } from "./state.js";

/**
 * An EXT_REC_UPDATE record as written, its entries built packed
 * (packedExtRecUpdates) and naming consecutive uids, and the extension it
 * updates.
 */
export interface ExtColumn {
  readonly record: ExtRecRecord & { readonly packed: PackedExtRecUpdates };
  readonly extName: string;
}

type ExtRecRecord = Extract<LogRecord, { type: "ext-rec" }>;

/** `record` (a packed EXT_REC_UPDATE, e.g. the second of an [intro, update] pair) as a column of extension `extName`. */
export function extRecColumn(record: LogRecord, extName: string): ExtColumn {
  if (record.type !== "ext-rec" || record.packed === undefined) throw new Error(`expected a packed ext-rec record for ${extName}, got ${record.type}`);
  return { record: record as ExtColumn["record"], extName };
}

/**
 * `transactions` with the columns' records emptied of their entries (those
 * are folded by fillExtColumns). The records stay, with their positions: the
 * fold still checks them against the selected extension, and the tail offset
 * still steps over them.
 */
export function withoutColumns(transactions: readonly LogTransaction[], columns: readonly ExtColumn[]): LogTransaction[] {
  const skip = new Set<LogRecord>(columns.map((c) => c.record));
  // Built as the builders build packed records (same fields, same order, a packed object of no entries):
  // a spread, or `packed: undefined`, gave the fold's optimized code a record of another shape, which
  // threw it away and compiled it again in the middle of a rebuild.
  const empty = (r: LogRecord): LogRecord => {
    const { external, sync, recordSize, packed } = r as ExtColumn["record"];
    return { type: "ext-rec", external, sync, recordSize, updates: [], packed: { bytes: packed.bytes, view: packed.view, start: packed.start, count: 0, entrySize: packed.entrySize } };
  };
  return transactions.map((tx) => {
    if (!tx.entries.some((e) => skip.has(e.record))) return tx;
    return { ...tx, entries: tx.entries.map((e) => (skip.has(e.record) ? { ...e, record: empty(e.record) } : e)) };
  });
}

/**
 * The state after the columns' records, each folded as one copy per row.
 * @throws Error when a column's entries are not consecutive rows of the
 *   state: the caller broke the contract above.
 */
export function fillExtColumns(state: IndexMapState, columns: readonly ExtColumn[]): IndexMapState {
  if (columns.length === 0) return state;
  return produce(state, (draft) => {
    const editor = state.records.edit({});
    for (const { record, extName } of columns) {
      const packed = record.packed;
      const count = packed.count;
      if (count === 0) continue;
      const ext = state.extensions[extIdOf(state, extName)];
      const size = record.recordSize;
      const first = editor.indexOfUid(packed.view.getUint32(packed.start, true));
      if (ext === undefined || size > ext.recordSize || first < 0 || first + count > editor.count) throw notRows(extName, packed);
      const span = editor.span(first, first + count - 1);
      const field = { recordSize: editor.recordSize, offset: ext.recordOffset, size, fieldSize: ext.recordSize };
      let k = 0;
      do {
        span.writable();
        k = copyRows(span.bytes, span.words, span.from, span.to, packed, k, field);
        if (k < 0) throw notRows(extName, packed);
      } while (span.next());
    }
    draft.records = castDraft(editor.finish());
  });
}

/** Where a column's entries go in a row: the row size, the field's offset and size, and the entries' size. */
interface FieldPlace {
  readonly recordSize: number;
  readonly offset: number;
  readonly fieldSize: number;
  readonly size: number;
}

/**
 * Copies entries k… into rows from..to of one leaf (`bytes`/`words`).
 * A function of its own, with typed arrays and numbers only: it runs once
 * per message and field, mostly cold, and a small loop is optimized early.
 * Whole words where the field and the entries allow (rows are word-aligned;
 * `map`, `mdbox` are, and `guid` is where its offset is): a quarter of the
 * stores of a byte copy.
 * @returns the next entry, or -1 when an entry does not name its row's uid.
 */
function copyRows(bytes: Uint8Array, words: Uint32Array, from: number, to: number, packed: PackedExtRecUpdates, k: number, f: FieldPlace): number {
  const recordSize = f.recordSize;
  const stride = recordSize >>> 2;
  const size = f.size;
  const end = f.offset + f.fieldSize;
  const src = packed.bytes;
  const view = packed.view;
  // The entries' bytes as words from the aligned start before them: entry data at p + 4 is word v = (shift + p + 4) / 4.
  const shift = src.byteOffset % 4;
  const byWords = (f.offset | size | (src.byteOffset + packed.start)) % 4 === 0 ? new Uint32Array(src.buffer, src.byteOffset - shift, (shift + src.length) >>> 2) : undefined;
  for (let row = from, p = packed.start + k * packed.entrySize; row <= to; row++, k++, p += packed.entrySize) {
    const o = row * recordSize + f.offset;
    if (byWords !== undefined) {
      // The entry's uid is the word before its data: no DataView call per row (slow in cold code).
      let v = (shift + p) >>> 2;
      if (words[row * stride] !== byWords[v++]) return -1;
      for (let w = o >>> 2, e = (o + size) >>> 2; w < e; w++, v++) words[w] = byWords[v];
    } else {
      if (words[row * stride] !== view.getUint32(p, true)) return -1;
      for (let b = 0; b < size; b++) bytes[o + b] = src[p + 4 + b];
    }
    for (let b = o + size, e = row * recordSize + end; b < e; b++) bytes[b] = 0;
  }
  return k;
}

function notRows(extName: string, packed: PackedExtRecUpdates): Error {
  const uidAt = (i: number) => packed.view.getUint32(packed.start + i * packed.entrySize, true);
  return new Error(`ext column ${extName}: entries for uids ${uidAt(0)}..${uidAt(packed.count - 1)} are not consecutive rows of the state`);
}
