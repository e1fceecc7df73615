/**
 * The changes a Maildir still has to apply to its files: the internal
 * (non-EXTERNAL) changes between the index's log_file_tail_offset and its
 * head (transaction-log.md §5). The index already shows them; the file
 * names do not yet. Dovecot's index sync hands them to maildir as deltas
 * (index-sync-changes.c), which are applied to each file's *current* flags,
 * so that a concurrent rename by a mail client is merged rather than lost.
 *
 * They are read from the effects of those transactions (projections/
 * effects.ts): what each change really did to the index, so a request that
 * changed nothing there (a flag the message had) asks nothing of the file.
 * Expunges among them are requests (a client asked, nobody unlinked yet).
 */
import { IndexCorruptedError, LogPositionLostError, assertNever } from "../../shared/errors.js";
import { readLog } from "../../log/view.js";
import type { LogFileHeader, LogRecord, LogTransaction, UidRange } from "../../log/types.js";
import { advanceWithEffects, replay } from "../../projections/apply.js";
import { readCheckpoint } from "../../index-io/checkpoint-file.js";
import { fileRequests, forEachUidIn, type FileRequest, type TransactionEffects } from "../../projections/effects.js";
import { isBefore } from "../../index-io/load-state.js";
import { position } from "../../projections/read.js";
import { emptyIndexMap, type IndexMapState } from "../../projections/state.js";

/** One requested change to one message, in log order. */
export type PendingOp =
  | { readonly kind: "flags"; readonly add: number; readonly remove: number }
  | { readonly kind: "keyword"; readonly name: string; readonly add: boolean }
  | { readonly kind: "keyword-reset" }
  | { readonly kind: "expunge"; readonly guid?: Uint8Array };

/** Requested changes by UID (only UIDs the index still has). */
export type PendingChanges = ReadonlyMap<number, readonly PendingOp[]>;

/** True when the backend is behind the log (tail before head). */
export function hasUnsyncedTail(state: IndexMapState): boolean {
  return state.header.logFileTailOffset < state.header.logFileHeadOffset;
}

/**
 * The file changes in `effects` (of transactions after the tail, in log
 * order): their internal flag, keyword and expunge-request effects, per
 * UID that `state` (the index now) still has. EXTERNAL effects are already
 * in the files.
 */
export function pendingChangesOf(state: IndexMapState, effects: Iterable<TransactionEffects>): PendingChanges {
  const out = new Map<number, PendingOp[]>();
  const add = (e: FileRequest, op: PendingOp) => forEachUidIn(state.records, e.uid1, e.uid2, (uid) => push(out, uid, op));
  for (const e of fileRequests(effects)) {
    switch (e.type) {
      case "flags":
        add(e, { kind: "flags", add: e.add, remove: e.remove });
        break;
      case "keywords":
        add(e, { kind: "keyword", name: e.keyword, add: e.action === "add" });
        break;
      case "keywords-reset":
        add(e, { kind: "keyword-reset" });
        break;
      case "expunge-request":
        add(e, e.guid === undefined ? { kind: "expunge" } : { kind: "expunge", guid: e.guid });
        break;
      default:
        assertNever(e);
    }
  }
  return out;
}

/**
 * Reads the transactions in [tail, head) of the state's log file and folds
 * them, from the index as it was before them, for their effects.
 * @returns the ops per UID; empty when the tail is at the head.
 */
export function readPendingChanges(prefix: string, state: IndexMapState): PendingChanges {
  if (!hasUnsyncedTail(state)) return new Map();
  const { logFileSeq: seq, logFileTailOffset: tail, logFileHeadOffset: head } = state.header;
  const unsynced = (tx: LogTransaction) => tx.position.fileSeq === seq && tx.end.offset > tail && tx.position.offset < head;
  const base = baseBefore(prefix, tail, unsynced);
  if (base === undefined) return requestedChanges(prefix, state, unsynced);
  const { effects } = advanceWithEffects(base.state, base.range, base.headers);
  return pendingChangesOf(state, effects);
}

/**
 * The index just before the first unsynced transaction (the tail can point
 * just past a BOUNDARY: that transaction counts from its start), and the
 * unsynced transactions. From dovecot.index when it is not past them, else
 * from the log when it starts empty; undefined when neither reaches back.
 */
function baseBefore(
  prefix: string,
  tail: number,
  unsynced: (tx: LogTransaction) => boolean,
): { state: IndexMapState; range: LogTransaction[]; headers: readonly LogFileHeader[] } | undefined {
  let checkpoint: IndexMapState | undefined;
  try {
    checkpoint = readCheckpoint(prefix);
  } catch (err) {
    // An unreadable dovecot.index is as good as none: the log may still reach back.
    if (!(err instanceof IndexCorruptedError)) throw err;
  }
  const split = (log: ReturnType<typeof readLog>, from: IndexMapState) => {
    const first = log.transactions.findIndex(unsynced);
    if (first < 0) return undefined;
    const range = log.transactions.slice(first).filter(unsynced);
    // Read from a checkpoint past the tail, the first transaction found is not the first unsynced one.
    if (range[0].position.offset > tail || isBefore(range[0].position, position(from))) return undefined;
    return { state: replay(log.transactions.slice(0, first), from, log.headers), range, headers: log.headers };
  };
  if (checkpoint !== undefined) {
    const found = tryRead(() => split(readLog(prefix, position(checkpoint)), checkpoint));
    if (found !== undefined) return found;
  }
  const whole = readLog(prefix);
  if (!whole.fromScratch) return undefined;
  return split(whole, emptyIndexMap({ indexId: whole.headers[0].indexId }));
}

/** `read()`, or undefined when the log no longer reaches its position (rotated away). */
function tryRead<T>(read: () => T | undefined): T | undefined {
  try {
    return read();
  } catch (err) {
    if (err instanceof LogPositionLostError) return undefined;
    throw err;
  }
}

/**
 * When no state before the tail can be rebuilt (dovecot.index was written
 * past it and the log's start was rotated away), the records are taken as
 * the requests they are, for the UIDs the index has now; this is what
 * Dovecot's index-sync-changes.c does with every record. It cannot tell a
 * no-op request from a change, which only makes the file follow the
 * request once more.
 */
function requestedChanges(prefix: string, state: IndexMapState, unsynced: (tx: LogTransaction) => boolean): PendingChanges {
  const out = new Map<number, PendingOp[]>();
  for (const tx of readLog(prefix).transactions) {
    if (!unsynced(tx)) continue;
    for (const entry of tx.entries) if (!entry.record.external) addRequested(out, state, entry.record);
  }
  return out;
}

function addRequested(out: Map<number, PendingOp[]>, state: IndexMapState, r: LogRecord): void {
  const forRanges = (ranges: readonly UidRange[], op: PendingOp) => {
    for (const range of ranges) forEachUidIn(state.records, range.uid1, range.uid2, (uid) => push(out, uid, op));
  };
  switch (r.type) {
    case "flag-update":
      for (const u of r.updates) {
        if (((u.addFlags | u.removeFlags) & 0xff) !== 0) forRanges([u], { kind: "flags", add: u.addFlags, remove: u.removeFlags });
      }
      return;
    case "keyword-update":
      return forRanges(r.ranges, { kind: "keyword", name: r.name, add: r.modifyType === "add" });
    case "keyword-reset":
      return forRanges(r.ranges, { kind: "keyword-reset" });
    case "expunge":
      return forRanges(r.ranges, { kind: "expunge" });
    case "expunge-guid":
      for (const e of r.expunges) forRanges([{ uid1: e.uid, uid2: e.uid }], { kind: "expunge", guid: e.guid });
      return;
    // Appends, extension, modseq, attribute and header records need nothing from the files.
    case "append":
    case "header-update":
    case "ext-intro":
    case "ext-reset":
    case "ext-hdr":
    case "ext-hdr32":
    case "ext-rec":
    case "ext-atomic-inc":
    case "modseq-update":
    case "index-deleted":
    case "index-undeleted":
    case "boundary":
    case "attribute-update":
      return;
    default:
      assertNever(r);
  }
}

function push(out: Map<number, PendingOp[]>, uid: number, op: PendingOp): void {
  const list = out.get(uid);
  if (list) list.push(op);
  else out.set(uid, [op]);
}

/**
 * Applies `ops` to a file's flags and keyword names (case-insensitive), as
 * index_sync_changes_apply() does. Expunge requests are not flag changes
 * and are left to the caller.
 */
export function applyPendingOps(flags: number, keywords: readonly string[], ops: readonly PendingOp[]): { flags: number; keywords: string[] } {
  let f = flags;
  let kw = [...keywords];
  for (const op of ops) {
    if (op.kind === "flags") f = (f & ~op.remove) | op.add;
    else if (op.kind === "keyword-reset") kw = [];
    else if (op.kind === "keyword") {
      const lower = op.name.toLowerCase();
      const has = kw.some((k) => k.toLowerCase() === lower);
      if (op.add && !has) kw.push(op.name);
      else if (!op.add && has) kw = kw.filter((k) => k.toLowerCase() !== lower);
    }
  }
  return { flags: f & 0x1f, keywords: kw };
}
