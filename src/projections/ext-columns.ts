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
import type { LogRecord, LogTransaction } from "../log/types.js";
import type { IndexMapState } from "./state.js";
import { extIdOf } from "./state.js";

/** An EXT_REC_UPDATE record (as written) whose entries name consecutive uids, and the extension it updates. */
export interface ExtColumn {
  readonly record: Extract<LogRecord, { type: "ext-rec" }>;
  readonly extName: string;
}

/** `record` (an EXT_REC_UPDATE, e.g. the second of an [intro, update] pair) as a column of extension `extName`. */
export function extRecColumn(record: LogRecord, extName: string): ExtColumn {
  if (record.type !== "ext-rec") throw new Error(`expected an ext-rec record for ${extName}, got ${record.type}`);
  return { record, extName };
}

/**
 * `transactions` with the columns' records emptied of their entries (those
 * are folded by fillExtColumns). The records stay, with their positions: the
 * fold still checks them against the selected extension, and the tail offset
 * still steps over them.
 */
export function withoutColumns(transactions: readonly LogTransaction[], columns: readonly ExtColumn[]): LogTransaction[] {
  const skip = new Set<LogRecord>(columns.map((c) => c.record));
  return transactions.map((tx) => {
    if (!tx.entries.some((e) => skip.has(e.record))) return tx;
    return { ...tx, entries: tx.entries.map((e) => (skip.has(e.record) ? { ...e, record: { ...e.record, updates: [] } as LogRecord } : e)) };
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
      const updates = record.updates;
      const count = updates.length;
      if (count === 0) continue;
      const ext = state.extensions[extIdOf(state, extName)];
      const size = record.recordSize;
      const first = editor.indexOfUid(updates[0].uid);
      if (ext === undefined || size > ext.recordSize || first < 0 || first + count > editor.count) throw notRows(extName, record);
      const span = editor.span(first, first + count - 1);
      const recordSize = editor.recordSize;
      const stride = recordSize >>> 2;
      // Whole words where the field, the entries and their data allow: this loop runs once per
      // message and field, cold, where every operation counts (a view per entry would allocate).
      const byWords = ((recordSize | ext.recordOffset | size | ext.recordSize) & 3) === 0;
      let dataBuffer: ArrayBufferLike | undefined;
      let dataWords: Uint32Array<ArrayBufferLike> = new Uint32Array(0);
      let k = 0;
      do {
        span.writable();
        const rows = span.bytes;
        const words = span.words;
        for (let row = span.from; row <= span.to; row++, k++) {
          const u = updates[k];
          if (words[row * stride] !== u.uid) throw notRows(extName, record);
          const o = row * recordSize + ext.recordOffset;
          const data = u.data;
          if (byWords && (data.byteOffset & 3) === 0 && data.length >= size) {
            if (data.buffer !== dataBuffer) {
              dataBuffer = data.buffer;
              dataWords = new Uint32Array(dataBuffer, 0, dataBuffer.byteLength >>> 2);
            }
            for (let w = o >>> 2, from = data.byteOffset >>> 2, end = w + (size >>> 2); w < end; w++, from++) words[w] = dataWords[from];
            for (let w = (o + size) >>> 2, end = (o + ext.recordSize) >>> 2; w < end; w++) words[w] = 0;
            continue;
          }
          for (let b = 0; b < size; b++) rows[o + b] = data[b];
          for (let b = size; b < ext.recordSize; b++) rows[o + b] = 0;
        }
      } while (span.next());
    }
    draft.records = castDraft(editor.finish());
  });
}

function notRows(extName: string, record: ExtColumn["record"]): Error {
  const u = record.updates;
  return new Error(`ext column ${extName}: entries for uids ${u[0].uid}..${u[u.length - 1].uid} are not consecutive rows of the state`);
}
