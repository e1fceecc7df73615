/**
 * What the mbox driver needs to know from an index state: the messages with
 * their from offsets and header MD5s, and which messages have changes the
 * mbox file does not show yet.
 *
 * "Pending" follows Dovecot (transaction-log.md §5, mbox-sync.c): flag,
 * keyword and expunge records written WITHOUT the EXTERNAL bit after the
 * index's log_file_tail_offset are requests the mbox has not received; a
 * record carrying the DIRTY flag (0x80) has flags that were not written back
 * yet. For those messages the index wins over the file; for every other
 * message a difference means someone changed the file, and the file wins.
 */
import { assertNever, MailstoreError } from "../../shared/errors.js";
import type { LogEntry, UidRange } from "../../log/types.js";
import { MailFlag } from "../../log/types.js";
import { readLog } from "../../log/view.js";
import { getHeader, position, recordAt } from "../../projections/read.js";
import { fileRequests, type TransactionEffects } from "../../projections/effects.js";
import type { IndexMapState } from "../../projections/state.js";
import { fromOffsetOf, headerMd5Of } from "./index-ext.js";

/** One message of the index. */
export interface IndexedMessage {
  readonly uid: number;
  /** Flags byte (MailFlag bits, DIRTY included). */
  readonly flags: number;
  readonly keywords: readonly string[];
  readonly fromOffset?: number;
  readonly md5?: Uint8Array;
}

/** @returns every message of `state`, in uid order. */
export function indexedMessages(state: IndexMapState): IndexedMessage[] {
  const out: IndexedMessage[] = [];
  for (let seq = 1; seq <= state.records.count; seq++) {
    const r = recordAt(state, seq)!;
    const fromOffset = fromOffsetOf(r);
    const md5 = headerMd5Of(r);
    out.push({ uid: r.uid, flags: r.flags, keywords: r.keywords, ...(fromOffset !== undefined ? { fromOffset } : {}), ...(md5 ? { md5 } : {}) });
  }
  return out;
}

/** Changes the mbox file has not received yet. */
export interface PendingChanges {
  /** Messages whose flags/keywords the index decides ("all" when the log could not tell). */
  readonly flags: ReadonlySet<number> | "all";
  /** Expunges requested but not done. */
  readonly expunges: ReadonlySet<number>;
  /** True when there is anything at all (the tail lags the head or a record is DIRTY). */
  readonly any: boolean;
}

function addExisting(state: IndexMapState, out: Set<number>, ranges: readonly UidRange[]): void {
  for (const r of ranges) {
    const span = state.records.rangeOfUids(r.uid1, r.uid2);
    if (!span) continue;
    for (let i = span[0]; i <= span[1]; i++) out.add(state.records.uidAt(i));
  }
}

/** Size of a BOUNDARY record (header 8 + u32 size). */
const BOUNDARY_RECORD_SIZE = 12;

/**
 * @returns the log entries from `offset` on, or undefined when the log
 *   cannot be read from there (rotated away). The tail offset steps over the
 *   BOUNDARY of a transaction that starts at it (projections/apply.ts), so it
 *   may point just inside one: then the transaction is read from its start.
 */
function logEntriesFrom(prefix: string, fileSeq: number, offset: number): LogEntry[] | undefined {
  for (const start of [offset, offset - BOUNDARY_RECORD_SIZE]) {
    if (start <= 0) continue;
    try {
      return readLog(prefix, { fileSeq, offset: start }).transactions.flatMap((tx) => tx.entries.filter((e) => e.position.offset >= offset || e.position.fileSeq !== fileSeq));
    } catch (err) {
      if (!(err instanceof MailstoreError)) throw err;
    }
  }
  return undefined;
}

/**
 * pendingChanges() from the effects of the transactions after the tail
 * (the index writer keeps them), without reading the log: internal flag,
 * keyword and expunge-request effects, and DIRTY records.
 */
export function pendingChangesOf(state: IndexMapState, effects: Iterable<TransactionEffects>): PendingChanges {
  const flags = new Set<number>();
  const expunges = new Set<number>();
  for (const e of fileRequests(effects)) addExisting(state, e.type === "expunge-request" ? expunges : flags, [e]);
  addDirty(state, flags);
  const h = getHeader(state);
  return { flags, expunges, any: h.logFileTailOffset < position(state).offset || flags.size > 0 || expunges.size > 0 };
}

/** Records whose DIRTY flag says their flags were never written to the file. */
function addDirty(state: IndexMapState, out: Set<number>): void {
  if (state.dirtyCount === 0) return;
  for (let i = 0; i < state.records.count; i++) {
    const row = state.records.row(i);
    if (row.bytes[row.offset + 4] & MailFlag.DIRTY) out.add(state.records.uidAt(i));
  }
}

/**
 * @returns the messages with changes not in the mbox: internal records
 *   between the tail offset and the state's position, and DIRTY records.
 */
export function pendingChanges(prefix: string, state: IndexMapState): PendingChanges {
  const h = getHeader(state);
  const head = position(state);
  const flags = new Set<number>();
  const expunges = new Set<number>();
  let all = false;
  const tail = h.logFileTailOffset;
  if (tail < head.offset) {
    const entries = logEntriesFrom(prefix, head.fileSeq, tail);
    if (entries === undefined) all = true;
    for (const { record } of entries ?? []) {
      if (record.external) continue;
      switch (record.type) {
        case "flag-update":
          addExisting(state, flags, record.updates);
          break;
        case "keyword-update":
        case "keyword-reset":
          addExisting(state, flags, record.ranges);
          break;
        case "expunge":
          addExisting(state, expunges, record.ranges);
          break;
        case "expunge-guid":
          addExisting(state, expunges, record.expunges.map((e) => ({ uid1: e.uid, uid2: e.uid })));
          break;
        // Nothing the mbox file shows: appends are in it already, the rest lives in the index only.
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
          break;
        default:
          assertNever(record);
      }
    }
  }
  addDirty(state, flags);
  return { flags: all ? "all" : flags, expunges, any: all || tail < head.offset || flags.size > 0 || expunges.size > 0 };
}
