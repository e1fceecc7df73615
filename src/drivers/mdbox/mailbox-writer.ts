/**
 * Writing a mailbox's log from storage-level work (rebuild, recovering
 * deleted messages), where no Mailbox object is involved: through the same
 * index writer, under the mailbox's lock, with the state caught up first.
 * Never called with the map locked (see MdboxMap on lock order).
 */
import * as fs from "node:fs";
import { TransactionLog, type CreatedLog, type FsyncMode } from "../../log/log.js";
import type { LogRecord } from "../../log/types.js";
import type { ClosedIndexCache } from "../../index-io/closed-index-cache.js";
import { IndexWriter } from "../../index-io/writer.js";
import type { IndexMapState } from "../../projections/state.js";
import { guidIntro, guidRecordRecords, guidRecordRecordsOfColumns, mdboxIntro, mdboxRecordRecords, mdboxRecordRecordsOfColumns } from "./mailbox-format.js";

/** A new mailbox's next uid. */
const FIRST_UID = 1;

/** A message to add to a mailbox index, pointing at an existing map record. */
export interface MailboxAppend {
  readonly mapUid: number;
  readonly guid128: Uint8Array;
  readonly flags: number;
  readonly keywords: readonly string[];
  readonly saveDate: number;
  /** Keep this uid (rebuild from a backup); must be ≥ the mailbox's next uid. Default: the next uid. */
  readonly uid?: number;
}

/** The transactions a created log starts with. */
export interface CreatedTransactions {
  readonly transactions: ReadonlyArray<readonly LogRecord[]>;
}

/** Options of writeMailbox(). */
export interface WriteMailboxOptions {
  fsync?: FsyncMode;
  /** Creates the log with these records when it does not exist. */
  initialRecords?: () => LogRecord[];
  /**
   * With initialRecords: the transactions a log this call creates starts
   * with, given its next uid (1: the initial records add no messages). They
   * go into the new file in the same write, synced once before it is linked
   * in place, and the state is folded from what was written, not read back
   * from the file (a rebuild's recreated mailbox: one fdatasync instead of two). A log that
   * exists, or that someone else creates first, gets `build`'s appended as usual.
   */
  createWith?: (nextUid: number) => CreatedTransactions;
  /** Leave the state here on close (a rebuild recounts references from it afterwards). */
  closedIndexes?: ClosedIndexCache;
}

/**
 * Runs `build` under the mailbox log lock with the mailbox state caught up,
 * appending the transactions it returns.
 * @returns the state after the append.
 */
export async function writeMailbox(
  prefix: string,
  build: (state: IndexMapState) => Promise<ReadonlyArray<readonly LogRecord[]>> | ReadonlyArray<readonly LogRecord[]>,
  opts: WriteMailboxOptions = {},
): Promise<IndexMapState> {
  let createdWithTransactions = false;
  let created: CreatedLog | undefined;
  if (opts.initialRecords && !fs.existsSync(prefix + ".log")) {
    const first = opts.createWith?.(FIRST_UID);
    const create = { initialRecords: opts.initialRecords(), transactions: first?.transactions };
    created = TransactionLog.createIfMissingDecoded(prefix, create, opts.fsync);
    createdWithTransactions = created !== undefined && create.transactions !== undefined;
  }
  const writerOptions = { fsync: opts.fsync, keepsIndexBackup: true, closedIndexes: opts.closedIndexes };
  // A log just created is folded from what was written, not read back; a dovecot.index left beside it is what a load would start from.
  const writer = created !== undefined && !fs.existsSync(prefix) ? IndexWriter.openCreated(prefix, created, writerOptions) : IndexWriter.open(prefix, writerOptions);
  try {
    // Created with its transactions: what is left is dovecot.index, when due.
    await writer.sync(async (sync) => (createdWithTransactions ? undefined : sync.append(await build(sync.state))));
    return writer.state;
  } finally {
    await writer.close();
  }
}

/**
 * The records that add `items` to a mailbox whose next uid is `nextUid`:
 * EXTERNAL APPEND (flags included), keywords, `mdbox` and `guid` records.
 * @returns the records, and the uid each item got.
 */
export function appendRecords(nextUid: number, items: readonly MailboxAppend[]): { records: LogRecord[]; uids: number[] } {
  let next = nextUid;
  const uids = items.map((item) => {
    const uid = item.uid !== undefined && item.uid >= next ? item.uid : next;
    next = uid + 1;
    return uid;
  });
  if (items.length === 0) return { records: [], uids };
  const byKeyword = new Map<string, number[]>();
  for (let i = 0; i < items.length; i++) {
    // Indexed, with no closure per item: a rebuild puts back every message, mostly without keywords.
    for (const k of items[i].keywords) {
      let list = byKeyword.get(k);
      if (list === undefined) byKeyword.set(k, (list = []));
      list.push(uids[i]);
    }
  }
  const keywords: LogRecord[] = [];
  for (const [name, list] of byKeyword) {
    keywords.push({ type: "keyword-update", external: true, sync: false, modifyType: "add", name, ranges: mergeRanges(list) });
  }
  // The items themselves with the uids apart: no joined object per message (a rebuild adds every message).
  return appended(uids, (i) => items[i].flags & 0x1f, keywords, mdboxRecordRecords(items, uids), guidRecordRecords(items, uids));
}

/**
 * appendRecords() of messages put back from columns (a rebuild's found
 * messages), without flags or keywords, all saved at `saveDate`: the
 * message `indexes[k]` under uid nextUid + k, its map uid and GUID read
 * from the columns in place (no object per message).
 */
export function appendRecordsOfColumns(
  nextUid: number, indexes: readonly number[], columns: { readonly mapUids: ArrayLike<number>; readonly guids: Uint8Array }, saveDate: number,
): { records: LogRecord[]; uids: number[] } {
  const uids = indexes.map((_, k) => nextUid + k);
  if (indexes.length === 0) return { records: [], uids };
  const mdbox = mdboxRecordRecordsOfColumns(nextUid, indexes, columns.mapUids, saveDate);
  return appended(uids, () => 0, [], mdbox, guidRecordRecordsOfColumns(nextUid, indexes, columns.guids));
}

/** The records of an append (as appendRecords() documents) from its parts. */
function appended(uids: number[], flagsOf: (i: number) => number, keywords: LogRecord[], mdbox: LogRecord[], guid: LogRecord[]): { records: LogRecord[]; uids: number[] } {
  const records: LogRecord[] = [
    // The extensions first: a mailbox that does not have them yet (a new one) then lays its
    // records out once, not again for each intro after the appends (a rebuild adds every message).
    mdboxIntro(),
    guidIntro(),
    { type: "append", external: true, sync: false, messages: uids.map((uid, i) => ({ uid, flags: flagsOf(i) })) },
    ...keywords,
    ...mdbox,
    ...guid,
  ];
  return { records, uids };
}

/** Ascending uids as merged ranges (log records want sorted, non-overlapping ranges). */
function mergeRanges(uids: readonly number[]): Array<{ uid1: number; uid2: number }> {
  const out: Array<{ uid1: number; uid2: number }> = [];
  for (const uid of uids) {
    const last = out[out.length - 1];
    if (last !== undefined && uid === last.uid2 + 1) last.uid2 = uid;
    else out.push({ uid1: uid, uid2: uid });
  }
  return out;
}
