import { IndexCorruptedError, LogPositionLostError } from "../shared/errors.js";
import * as fs from "node:fs";
import type { CreatedLog } from "../log/log.js";
import type { LogFileHeader, LogPosition, LogTransaction } from "../log/types.js";
import { readLog, readLogTail, streamLog, type LogReadResult } from "../log/view.js";
import { advance, applyTransaction, enterLogFile, Replay, withLogModseq } from "../projections/apply.js";
import { readCheckpoint } from "./checkpoint-file.js";
import { position } from "../projections/read.js";
import { emptyIndexMap, type IndexMapState } from "../projections/state.js";

/**
 * Loading a mailbox's state from its files: `dovecot.index` (when present)
 * plus the log from the position it records, or the whole log when it starts
 * empty. The same code answers "the state at position P" (time travel).
 */

export interface LoadOptions {
  /** Called while folding: transactions done and to do (for progress bars on long replays). */
  onProgress?: (done: number, total: number) => void;
  /** Told where dovecot.index (the checkpoint the load started from) points, when one was used. */
  onCheckpoint?: (at: LogPosition) => void;
  /**
   * Read dovecot.index's header only; its rows when first used (an index
   * writer's state: IndexWriter.open). A broken row found while folding the
   * log tail starts the load again without it, as a broken file found on
   * open does; one found later is thrown where the row is used, and the
   * writer reloads (IndexWriter's ensureRows).
   */
  lazy?: boolean;
  /**
   * Stop at this position (a transaction boundary the log reached): the
   * state there, not at the log's end. A dovecot.index past it is not used
   * unless the log cannot reach back to its start (then the state is the
   * checkpoint's, past `until`). The writer's reload of a state whose rows
   * turned out broken: what comes after is folded as usual, with effects.
   */
  until?: LogPosition;
}

/**
 * dovecot.index, or undefined with the reason when it is unreadable: a
 * broken checkpoint is no worse than a missing one as long as the log
 * reaches back to its start (the next checkpoint replaces it); otherwise
 * the caller says the mailbox needs a rebuild.
 */
function usableCheckpoint(prefix: string, lazy = false): { checkpoint?: IndexMapState; broken?: IndexCorruptedError } {
  try {
    return { checkpoint: readCheckpoint(prefix, { lazy }) };
  } catch (err) {
    if (err instanceof IndexCorruptedError) return { broken: err };
    throw err;
  }
}

/** The state at the end of the log. */
export function loadState(prefix: string, options: LoadOptions = {}): IndexMapState {
  if (options.lazy) {
    try {
      return loadOnce(prefix, options, true);
    } catch (err) {
      // A row of the lazily read dovecot.index is broken (the fold read it): read it whole, which
      // finds that and loads from the log alone, as when the open finds it.
      if (!(err instanceof IndexCorruptedError && err.path === prefix)) throw err;
    }
  }
  return loadOnce(prefix, options, false);
}

function loadOnce(prefix: string, options: LoadOptions, lazy: boolean): IndexMapState {
  const until = options.until;
  if (until !== undefined) {
    try {
      return loadOnceUpTo(prefix, options, lazy, until, true);
    } catch (err) {
      // The log does not reach back to its start: a checkpoint past `until` is the nearest state.
      if (!(err instanceof IndexCorruptedError && err.path === prefix)) throw err;
    }
  }
  return loadOnceUpTo(prefix, options, lazy, until, false);
}

function loadOnceUpTo(prefix: string, options: LoadOptions, lazy: boolean, until: LogPosition | undefined, skipLaterCheckpoint: boolean): IndexMapState {
  let { checkpoint, broken } = usableCheckpoint(prefix, lazy);
  if (skipLaterCheckpoint && checkpoint && until && isBefore(until, position(checkpoint))) checkpoint = undefined;
  let indexId = checkpoint?.header.indexId ?? 0;
  let run = new Replay(checkpoint ?? emptyIndexMap({ indexId }));
  let totalBytes = 0;
  let doneBytes = 0;
  let sinceProgress = 0;
  // With `until`: the last file header and transaction modseq at or before it.
  let untilHeader: LogFileHeader | undefined;
  let untilModseq: bigint | undefined;
  let resetPending = false;
  const past = (at: LogPosition): boolean => until !== undefined && !isBefore(at, until);
  // Streamed, not collected: a replay keeps only the state and one batch alive.
  const summary = streamLog(prefix, checkpoint ? position(checkpoint) : undefined, {
    onFile: (h) => {
      if (until !== undefined && h.fileSeq > until.fileSeq) return;
      if (resetPending) {
        resetPending = false;
        indexId = checkpoint?.header.indexId ?? 0;
        run = new Replay(emptyIndexMap({ indexId }));
      }
      untilHeader = h;
      // The first file of a log that starts empty gives the state its indexid.
      if (indexId === 0) {
        indexId = h.indexId;
        run = new Replay(emptyIndexMap({ indexId }));
      }
      run.addHeader(h);
      totalBytes = statLogBytes(prefix);
    },
    onTransaction: (tx) => {
      if (past(tx.position)) return;
      run.push(tx);
      untilModseq = tx.modseq;
      doneBytes += tx.end.offset - tx.position.offset;
      if (++sinceProgress >= PROGRESS_EVERY) {
        sinceProgress = 0;
        options.onProgress?.(doneBytes, totalBytes);
      }
    },
    // Told before the file's onFile, which decides (a reset past `until` does not count).
    onReset: () => (resetPending = true),
    // The replay folds each transaction as it comes and keeps nothing of it.
    reuse: true,
  });
  options.onProgress?.(doneBytes, totalBytes);
  if (!checkpoint && !summary.fromScratch) {
    const why = broken ? `dovecot.index is unreadable (${broken.message})` : "there is no dovecot.index";
    throw new IndexCorruptedError(`the log's older files are gone and ${why}: the mailbox needs a rebuild (force-resync)`, { path: prefix });
  }
  if (until !== undefined && untilHeader === undefined && !checkpoint) {
    // No file the log holds is at or before `until` (a log recreated since), and no checkpoint
    // past it to start from (loadOnce's second try): there is no state there.
    throw new LogPositionLostError(`the log no longer holds position ${until.fileSeq}:${until.offset}`, { path: prefix + ".log", fileSeq: until.fileSeq, offset: until.offset });
  }
  // Told only now: a lazy load that starts again without the checkpoint must not have reported it.
  if (checkpoint) options.onCheckpoint?.(position(checkpoint));
  if (until === undefined) return finishReplay(run, summary.headers[summary.headers.length - 1], summary.endModseq);
  return finishReplay(run, untilHeader ?? summary.headers[0], untilModseq ?? summary.startModseq);
}

/**
 * The state of a log this process just created and has not written to
 * since (with no dovecot.index): what loadState would read back from it,
 * folded from what its creation decoded instead.
 */
export function stateOfCreatedLog(created: CreatedLog): IndexMapState {
  const run = new Replay(emptyIndexMap({ indexId: created.header.indexId }));
  run.addHeader(created.header);
  for (const tx of created.transactions) run.push(tx);
  return finishReplay(run, created.header, created.end.modseq);
}

/** A replay's state, moved into the head file `head` and given the log's running modseq at its end. */
function finishReplay(run: Replay, head: LogFileHeader, endModseq: bigint): IndexMapState {
  let state = run.finish();
  // A rotated-to file with no transactions yet still moves the state into it.
  if (head.fileSeq !== state.header.logFileSeq) state = enterLogFile(state, head);
  // A decoded checkpoint cannot know the log's running modseq; the log read can.
  return withLogModseq(state, endModseq);
}

/** Transactions between two progress reports. */
const PROGRESS_EVERY = 4096;

function statLogBytes(prefix: string): number {
  let total = 0;
  for (const suffix of [".log", ".log.2"]) {
    try {
      total += fs.statSync(prefix + suffix).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err; // absent: nothing to count
    }
  }
  return total;
}

/**
 * The state just after the transaction ending at `at` (or at the start of
 * the log when `at` is the header's end). Uses the checkpoint when it is
 * not past `at`, the whole log when that starts empty; otherwise the
 * position is lost (LogPositionLostError).
 */
export function stateAt(prefix: string, at: LogPosition): IndexMapState {
  const { checkpoint } = usableCheckpoint(prefix);
  const full = readLog(prefix);
  // Before a log that starts empty (e.g. 1:0, also when Dovecot created the index at file_seq 2) there is only the empty state: its start.
  const first = full.transactions[0]?.position ?? full.end;
  if (full.fromScratch && isBefore(at, first)) at = first;
  let base: IndexMapState | undefined;
  let transactions: LogTransaction[];
  if (full.fromScratch && !isBefore(at, first)) {
    base = emptyIndexMap({ indexId: full.headers[0].indexId });
    transactions = full.transactions;
  } else if (checkpoint && !isBefore(at, position(checkpoint))) {
    base = checkpoint;
    transactions = readLog(prefix, position(checkpoint)).transactions;
  } else {
    const since = checkpoint ? `dovecot.index is at ${position(checkpoint).fileSeq}:${position(checkpoint).offset}` : "there is no dovecot.index";
    const logStart = full.fromScratch ? `the log starts at ${first.fileSeq}:${first.offset}` : `the log reaches back to ${first.fileSeq}:${first.offset} only`;
    throw new LogPositionLostError(`no checkpoint or log history reaches back to this position (${logStart}; ${since})`, {
      path: prefix, fileSeq: at.fileSeq, offset: at.offset,
    });
  }
  const end = transactions.at(-1)?.end ?? position(base);
  if (isBefore(end, at)) {
    // Asked for the future: answering with the end state would pass it off as that position.
    throw new LogPositionLostError(`position is past the end of the log (${end.fileSeq}:${end.offset})`, {
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

/**
 * loadState from `known`, a state of this very log kept in this process
 * (ClosedIndexCache.stateOf): only what was appended since is read and
 * folded, instead of dovecot.index and its log tail. Falls back to
 * loadState when the log no longer reaches back to it.
 */
export function loadStateFrom(prefix: string, known: IndexMapState): IndexMapState {
  let read: LogReadResult;
  try {
    read = readSince(prefix, known);
  } catch (err) {
    if (!(err instanceof LogPositionLostError)) throw err;
    return loadState(prefix);
  }
  const here = position(known);
  const fresh = read.transactions.filter((tx) => !isBefore(tx.position, here));
  return fresh.length === 0 && read.headers.every((h) => h.fileSeq === here.fileSeq) ? known : advance(known, fresh, read.headers);
}

/** What was appended since `state` (cheap when the state is in the head file). */
export function readSince(prefix: string, state: IndexMapState): LogReadResult {
  const from = position(state);
  return state.logModseq > 0n ? readLogTail(prefix, from, state.logModseq) : readLog(prefix, from);
}

export function isBefore(a: LogPosition, b: LogPosition): boolean {
  return a.fileSeq < b.fileSeq || (a.fileSeq === b.fileSeq && a.offset < b.offset);
}
