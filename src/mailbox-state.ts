import { IndexCorruptedError, LogPositionLostError } from "./errors.js";
import type { LogPosition, LogTransaction } from "./log/types.js";
import { readLog, readLogTail, type LogReadResult } from "./log/view.js";
import { applyTransaction, enterLogFile, replay, withLogModseq } from "./projections/apply.js";
import { readCheckpoint } from "./projections/checkpoint-file.js";
import { position } from "./projections/read.js";
import { emptyIndexMap, type IndexMapState } from "./projections/state.js";

/**
 * Loading a mailbox's state from its files: `dovecot.index` (when present)
 * plus the log from the position it records, or the whole log when it starts
 * empty. The same code answers "the state at position P" (time travel).
 */

export interface LoadOptions {
  /** Called while folding: transactions done and to do (for progress bars on long replays). */
  onProgress?: (done: number, total: number) => void;
}

/** Transactions folded between two progress reports. */
const PROGRESS_CHUNK = 20_000;

/** The state at the end of the log. */
export function loadState(prefix: string, options: LoadOptions = {}): IndexMapState {
  const checkpoint = readCheckpoint(prefix);
  const read = checkpoint ? readFromCheckpoint(prefix, checkpoint) : readLog(prefix);
  if (!checkpoint && !read.fromScratch) {
    throw new IndexCorruptedError("the log's older files are gone and there is no dovecot.index: the mailbox needs a rebuild", { path: prefix });
  }
  const initial = checkpoint && !read.fromScratch ? checkpoint : emptyIndexMap({ indexId: read.headers[0].indexId });
  let state = initial;
  const txs = read.transactions;
  for (let i = 0; i < txs.length; i += PROGRESS_CHUNK) {
    state = replay(txs.slice(i, i + PROGRESS_CHUNK), state, read.headers);
    options.onProgress?.(Math.min(i + PROGRESS_CHUNK, txs.length), txs.length);
  }
  // A rotated-to file with no transactions yet still moves the state into it.
  const head = read.headers[read.headers.length - 1];
  if (head.fileSeq !== state.header.logFileSeq) state = enterLogFile(state, head);
  // A decoded checkpoint cannot know the log's running modseq; the log read can.
  return withLogModseq(state, read.endModseq);
}

/**
 * The state just after the transaction ending at `at` (or at the start of
 * the log when `at` is the header's end). Uses the checkpoint when it is
 * not past `at`, the whole log when that starts empty; otherwise the
 * position is lost (LogPositionLostError).
 */
export function stateAt(prefix: string, at: LogPosition): IndexMapState {
  const checkpoint = readCheckpoint(prefix);
  const full = readLog(prefix);
  let base: IndexMapState | undefined;
  let transactions: LogTransaction[];
  if (full.fromScratch && !isBefore(at, full.transactions[0]?.position ?? full.end)) {
    base = emptyIndexMap({ indexId: full.headers[0].indexId });
    transactions = full.transactions;
  } else if (checkpoint && !isBefore(at, position(checkpoint))) {
    base = checkpoint;
    transactions = readLog(prefix, position(checkpoint)).transactions;
  } else {
    throw new LogPositionLostError("no checkpoint or log history reaches back to this position", {
      path: prefix, fileSeq: at.fileSeq, offset: at.offset,
    });
  }
  let state = base;
  for (const tx of transactions) {
    if (isBefore(at, tx.end)) {
      if (isBefore(tx.position, at)) {
        throw new LogPositionLostError("position is inside a transaction", { path: prefix, fileSeq: at.fileSeq, offset: at.offset });
      }
      break;
    }
    state = applyTransaction(state, tx);
  }
  return state;
}

/** What was appended since `state` (cheap when the state is in the head file). */
export function readSince(prefix: string, state: IndexMapState): LogReadResult {
  const from = position(state);
  return state.logModseq > 0n ? readLogTail(prefix, from, state.logModseq) : readLog(prefix, from);
}

function readFromCheckpoint(prefix: string, checkpoint: IndexMapState): LogReadResult {
  return readLog(prefix, position(checkpoint));
}

export function isBefore(a: LogPosition, b: LogPosition): boolean {
  return a.fileSeq < b.fileSeq || (a.fileSeq === b.fileSeq && a.offset < b.offset);
}
