/**
 * The changes a Maildir still has to apply to its files: the internal
 * (non-EXTERNAL) records between the index's log_file_tail_offset and its
 * head (transaction-log.md §5). The index already shows them; the file
 * names do not yet. Dovecot's index sync hands them to maildir as deltas
 * (index-sync-changes.c), which are applied to each file's *current* flags,
 * so that a concurrent rename by a mail client is merged rather than lost.
 *
 * Expunges among them are requests (a client asked, nobody unlinked yet).
 */
import { streamLog } from "../../log/view.js";
import type { LogRecord, UidRange } from "../../log/types.js";
import type { IndexMapState } from "../../projections/state.js";

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
 * Reads the internal records in [tail, head) of the state's log file.
 * @returns the ops per UID; empty when the tail is at the head.
 */
export function readPendingChanges(prefix: string, state: IndexMapState): PendingChanges {
  const out = new Map<number, PendingOp[]>();
  if (!hasUnsyncedTail(state)) return out;
  const { logFileSeq: seq, logFileTailOffset: tail, logFileHeadOffset: head } = state.header;
  streamLog(prefix, undefined, {
    onTransaction: (tx) => {
      if (tx.position.fileSeq !== seq || tx.end.offset <= tail || tx.position.offset >= head) return;
      for (const entry of tx.entries) {
        if (entry.position.offset < tail || entry.position.offset >= head || entry.record.external) continue;
        addRecord(out, state, entry.record);
      }
    },
    onReset: () => out.clear(),
  });
  return out;
}

function addRecord(out: Map<number, PendingOp[]>, state: IndexMapState, r: LogRecord): void {
  switch (r.type) {
    case "flag-update":
      for (const u of r.updates) {
        if (((u.addFlags | u.removeFlags) & 0xff) === 0) continue;
        forUids(state, u, (uid) => push(out, uid, { kind: "flags", add: u.addFlags, remove: u.removeFlags }));
      }
      return;
    case "keyword-update":
      for (const range of r.ranges) forUids(state, range, (uid) => push(out, uid, { kind: "keyword", name: r.name, add: r.modifyType === "add" }));
      return;
    case "keyword-reset":
      for (const range of r.ranges) forUids(state, range, (uid) => push(out, uid, { kind: "keyword-reset" }));
      return;
    case "expunge":
      for (const range of r.ranges) forUids(state, range, (uid) => push(out, uid, { kind: "expunge" }));
      return;
    case "expunge-guid":
      for (const e of r.expunges) forUids(state, { uid1: e.uid, uid2: e.uid }, (uid) => push(out, uid, { kind: "expunge", guid: e.guid }));
      return;
    default:
      // Extension, modseq and header records need nothing from the files.
      return;
  }
}

/** Calls `fn` for each UID of `range` the state has (never walks holes). */
function forUids(state: IndexMapState, range: UidRange, fn: (uid: number) => void): void {
  const span = state.records.rangeOfUids(range.uid1, range.uid2);
  if (!span) return;
  for (let i = span[0]; i <= span[1]; i++) fn(state.records.uidAt(i));
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
