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
import type { ExtRecUpdate, LogRecord, LogTransaction } from "../log/types.js";
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
      const field = { recordSize: editor.recordSize, offset: ext.recordOffset, size, fieldSize: ext.recordSize };
      let k = 0;
      do {
        span.writable();
        k = copyRows(span.bytes, span.words, span.from, span.to, updates, k, field);
        if (k < 0) throw notRows(extName, record);
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
 * @returns the next entry, or -1 when an entry does not name its row's uid.
 */
function copyRows(bytes: Uint8Array, words: Uint32Array, from: number, to: number, updates: readonly ExtRecUpdate[], k: number, f: FieldPlace): number {
  const recordSize = f.recordSize;
  const stride = recordSize >>> 2;
  const size = f.size;
  const end = f.offset + f.fieldSize;
  for (let row = from; row <= to; row++, k++) {
    const u = updates[k];
    if (words[row * stride] !== u.uid) return -1;
    const data = u.data;
    const o = row * recordSize + f.offset;
    for (let b = 0; b < size; b++) bytes[o + b] = data[b];
    for (let b = o + size, e = row * recordSize + end; b < e; b++) bytes[b] = 0;
  }
  return k;
}

function notRows(extName: string, record: ExtColumn["record"]): Error {
  const u = record.updates;
  return new Error(`ext column ${extName}: entries for uids ${u[0].uid}..${u[u.length - 1].uid} are not consecutive rows of the state`);
}
