/**
 * The index map fold: `(state, entry) => state`, Dovecot's
 * mail_index_sync_record() as a pure function. Replay from scratch, advancing
 * a view and catching up from a checkpoint all go through `applyTransaction`.
 *
 * Positions: a state reflects the log up to `header.logFileSeq` /
 * `header.logFileHeadOffset`, which only ever point at transaction ends (as
 * Dovecot's head offset does), so the position moves per transaction, not
 * per entry. That is also what lets an entry without effect (an expunge
 * request, an update of an expunged uid) return the very same state object.
 */
import { createDraft, finishDraft, produce, type Draft } from "immer";
import type { LogEntry, LogFileHeader, LogRecord, LogRecordType, LogTransaction } from "../log/types.js";
import { ApplyContext } from "./apply-context.js";
import {
  applyExtAtomicInc,
  applyExtHdrUpdate,
  applyExtIntro,
  applyExtRecUpdate,
  applyExtReset,
} from "./apply-ext.js";
import { applyHeaderUpdate, trackTailOffset } from "./apply-header.js";
import { applyKeywordReset, applyKeywordUpdate } from "./apply-keywords.js";
import { applyAppend, applyExpunge, applyExpungeGuid, applyFlagUpdate } from "./apply-messages.js";
import { applyAttributeUpdate, applyModseqUpdate, stampModseqHeader } from "./apply-modseq.js";
import { IndexHeaderFlag } from "./base-header.js";
import { EffectsCollector, type TransactionEffects } from "./effects.js";
import { emptyIndexMap, type IndexMapState } from "./state.js";

type Applier<T extends LogRecordType> = (ctx: ApplyContext, record: Extract<LogRecord, { type: T }>) => void;

/** One handler per record type: a new type without a handler does not compile. */
const APPLIERS: { [T in LogRecordType]: Applier<T> } = {
  "expunge": applyExpunge,
  "append": applyAppend,
  "flag-update": applyFlagUpdate,
  "header-update": applyHeaderUpdate,
  "ext-intro": applyExtIntro,
  "ext-reset": applyExtReset,
  "ext-hdr": applyExtHdrUpdate,
  "ext-hdr32": applyExtHdrUpdate,
  "ext-rec": applyExtRecUpdate,
  "keyword-update": applyKeywordUpdate,
  "keyword-reset": applyKeywordReset,
  "ext-atomic-inc": applyExtAtomicInc,
  "expunge-guid": applyExpungeGuid,
  "modseq-update": applyModseqUpdate,
  "index-deleted": applyIndexDeleted,
  "index-undeleted": applyIndexUndeleted,
  // Transactions are framed by the log reader; a boundary changes nothing.
  "boundary": () => {},
  "attribute-update": applyAttributeUpdate,
};

/** INDEX_DELETED: EXTERNAL means done; otherwise a request the next sync finishes. */
function applyIndexDeleted(ctx: ApplyContext, record: Extract<LogRecord, { type: "index-deleted" }>): void {
  const draft = ctx.draft;
  if (record.external) {
    if (!draft.deleted) ctx.effects?.mailboxDeleted(true);
    draft.deleted = true;
    draft.deleteRequested = false;
  } else {
    if (!draft.deleteRequested) ctx.effects?.mailboxDeleted(false);
    draft.deleteRequested = true;
  }
}

/** INDEX_UNDELETED: cancels a request; EXTERNAL also undoes a deletion. */
function applyIndexUndeleted(ctx: ApplyContext, record: Extract<LogRecord, { type: "index-undeleted" }>): void {
  const draft = ctx.draft;
  const undone = (record.external && draft.deleted) || draft.deleteRequested;
  if (undone) ctx.effects?.mailboxUndeleted(record.external);
  draft.deleteRequested = false;
  if (record.external) draft.deleted = false;
}

function dispatch(ctx: ApplyContext, record: LogRecord): void {
  (APPLIERS[record.type] as Applier<LogRecordType>)(ctx, record as never);
}

/** Applies one entry inside an open produce. */
function step(ctx: ApplyContext, entry: LogEntry): void {
  ctx.entry = entry;
  dispatch(ctx, entry.record);
  trackTailOffset(ctx);
}

/**
 * Applies one record. Returns the same object when the record changes
 * nothing. Throws LogCorruptedError (with the entry's position) for a record
 * Dovecot would reject as corrupted; `state` is unchanged then.
 *
 * Use `applyTransaction` to advance a state: it also moves the position and
 * does the end-of-transaction bookkeeping.
 */
export function applyEntry(state: IndexMapState, entry: LogEntry): IndexMapState {
  return produce(state, (draft) => {
    const ctx = new ApplyContext(draft, state, {});
    step(ctx, entry);
    ctx.finish();
  });
}

/**
 * One transaction in one immer produce and one record editor: the records of
 * a transaction usually touch the same leaves (an append, its cache offsets,
 * its keywords), which are then copied once.
 */
function applyWith(state: IndexMapState, tx: LogTransaction, token: object, effects?: EffectsCollector): IndexMapState {
  return produce(state, (draft) => {
    const ctx = new ApplyContext(draft, state, token, effects);
    applyToDraft(ctx, draft, tx);
    ctx.finish();
  });
}

function applyToDraft(ctx: ApplyContext, draft: Draft<IndexMapState>, tx: LogTransaction): void {
  const h = ctx.header;
  if (tx.position.fileSeq !== h.logFileSeq) {
    // Entering another log file: the tail offset starts over in it.
    h.logFileSeq = tx.position.fileSeq;
    h.logFileTailOffset = 0;
  }
  if (tx.framed && tx.entries.length > 0 && h.logFileTailOffset === tx.position.offset) {
    // The boundary record is EXTERNAL: the tail steps over it like over any external record.
    h.logFileTailOffset = tx.entries[0].position.offset;
  }
  for (const entry of tx.entries) step(ctx, entry);
  h.logFileSeq = tx.end.fileSeq;
  h.logFileHeadOffset = tx.end.offset;
  ctx.raiseLogModseq(tx.modseq);
  stampModseqHeader(ctx, tx.end);
  // HAVE_DIRTY is kept exact: set while any record is DIRTY. Dovecot only clears it
  // at the end of a sync that began with it set, so one long sync over "+DIRTY … -DIRTY"
  // (mbox) leaves it set until the next sync; that difference is harmless and
  // depends on process boundaries a fold cannot see.
  // The flag first: reading the draft costs a proxy trap.
  if (h.flags & IndexHeaderFlag.HAVE_DIRTY && draft.dirtyCount === 0) h.flags &= ~IndexHeaderFlag.HAVE_DIRTY;
}

/**
 * Applies a committed transaction and moves the state's position to its end.
 * Throws LogCorruptedError like `applyEntry`.
 */
export function applyTransaction(state: IndexMapState, tx: LogTransaction): IndexMapState {
  return applyWith(state, tx, {});
}

/**
 * `applyTransaction`, also returning what the transaction changed (see
 * effects.ts): the same appliers, told to report. Use it wherever a change
 * is passed on (view sync, change streams, backend file updates); replay
 * has no use for effects and does not collect them. Throws like
 * `applyTransaction`.
 */
export function applyTransactionWithEffects(state: IndexMapState, tx: LogTransaction): { state: IndexMapState; effects: TransactionEffects } {
  const collector = new EffectsCollector();
  const next = applyWith(state, tx, {}, collector);
  return {
    state: next,
    effects: { position: tx.position, end: tx.end, modseq: tx.modseq, external: tx.external, effects: collector.effects },
  };
}

/**
 * Advances `state` over `transactions` (in log order, as readLog returns
 * them) and returns the new state with the effects of each transaction.
 * Crossing into a log file whose header is in `headers` enters it as
 * `replay` does (enterLogFile). Throws LogCorruptedError like
 * `applyTransaction`.
 */
export function advanceWithEffects(
  state: IndexMapState,
  transactions: Iterable<LogTransaction>,
  headers: readonly LogFileHeader[] = [],
): { state: IndexMapState; effects: TransactionEffects[] } {
  const effects: TransactionEffects[] = [];
  const next = advanceOver(state, transactions, headers, (fx) => effects.push(fx));
  return { state: next, effects };
}

/**
 * advanceWithEffects without the effects, for a fold nobody is told about:
 * they cost an object per appended message (issue #11: a rebuild's writers
 * append every message and have no listener).
 */
export function advance(state: IndexMapState, transactions: Iterable<LogTransaction>, headers: readonly LogFileHeader[] = []): IndexMapState {
  return advanceOver(state, transactions, headers, undefined);
}

function advanceOver(
  state: IndexMapState,
  transactions: Iterable<LogTransaction>,
  headers: readonly LogFileHeader[],
  onEffects: ((effects: TransactionEffects) => void) | undefined,
): IndexMapState {
  let current = state;
  for (const tx of transactions) {
    if (tx.position.fileSeq !== current.header.logFileSeq) {
      const header = headers.find((h) => h.fileSeq === tx.position.fileSeq);
      if (header !== undefined) current = enterLogFile(current, header);
    }
    if (onEffects === undefined) {
      current = applyTransaction(current, tx);
    } else {
      const step = applyTransactionWithEffects(current, tx);
      current = step.state;
      onEffects(step.effects);
    }
  }
  return current;
}

/** Transactions folded per immer draft during a replay. */
const REPLAY_BATCH = 256;

/**
 * A replay in progress: each transaction pushed (in log order) is folded at
 * once into an open immer draft, which is finished every REPLAY_BATCH
 * transactions, all under one ownership token, so a leaf copied once is
 * changed in place for the rest of the replay. Folding on push, rather than
 * collecting a batch first, means a streaming reader's decoded transaction
 * is garbage as soon as push returns: young-generation collections then find
 * next to nothing alive to copy. Intermediate states are never exposed.
 */
export class Replay {
  private readonly token = {};
  private open: { draft: Draft<IndexMapState>; ctx: ApplyContext; count: number } | undefined;
  private batchSeq: number;
  private readonly headers: LogFileHeader[];

  constructor(
    private state: IndexMapState,
    /** Headers of the log files read: crossing into one is a rotation, see `enterLogFile`. */
    headers: readonly LogFileHeader[] = [],
  ) {
    this.headers = [...headers];
    this.batchSeq = state.header.logFileSeq;
  }

  /** Makes a log file's header known (a streaming reader meets them one by one). */
  addHeader(header: LogFileHeader): void {
    this.headers.push(header);
  }

  /**
   * Folds `tx` (it is not kept: a reader may reuse it afterwards). Throws
   * LogCorruptedError like `applyTransaction`; the replay is unusable then.
   */
  push(tx: LogTransaction): void {
    if (tx.position.fileSeq !== this.batchSeq) {
      // A rotation is applied between batches, on a finished state.
      this.flush();
      this.batchSeq = tx.position.fileSeq;
      const header = this.headers.find((h) => h.fileSeq === tx.position.fileSeq);
      if (header !== undefined) this.state = enterLogFile(this.state, header);
    }
    if (this.open === undefined) {
      const draft = createDraft(this.state);
      this.open = { draft, ctx: new ApplyContext(draft, this.state, this.token), count: 0 };
    }
    const open = this.open;
    applyToDraft(open.ctx, open.draft, tx);
    if (++open.count >= REPLAY_BATCH) this.flush();
  }

  /** The state after every transaction pushed. */
  finish(): IndexMapState {
    this.flush();
    return this.state;
  }

  private flush(): void {
    const open = this.open;
    if (open === undefined) return;
    this.open = undefined;
    // The same end as applyWith's produce: the context writes back, immer finalizes.
    open.ctx.finish();
    this.state = finishDraft(open.draft) as IndexMapState;
  }
}

/**
 * Folds transactions in order, from `initial` (an empty map by default: use
 * `emptyIndexMap({indexId})` to give it the log's indexid).
 */
export function replay(
  transactions: Iterable<LogTransaction>,
  initial: IndexMapState = emptyIndexMap(),
  /** Headers of the log files read (readLog's `headers`): crossing into one is a rotation, see `enterLogFile`. */
  headers: readonly LogFileHeader[] = [],
): IndexMapState {
  const run = new Replay(initial, headers);
  for (const tx of transactions) run.push(tx);
  return run.finish();
}

/**
 * Moves a state that has reached the end of its log file into the next one
 * (`header` is that file's header, which continues this state). Dovecot
 * rotates only with everything synced, then points dovecot.index at the new
 * file with head = tail = its header size, and stamps log2_rotate_time with
 * the rotation time, which is the new file's create_stamp. No record carries
 * that time, so a fold learns it here. Returns `state` unchanged when the
 * file does not continue it.
 */
export function enterLogFile(state: IndexMapState, header: LogFileHeader): IndexMapState {
  const h = state.header;
  if (header.fileSeq === h.logFileSeq) return state;
  if (header.prevFileSeq !== h.logFileSeq || header.prevFileOffset !== h.logFileHeadOffset) return state;
  return produce(state, (draft) => {
    draft.header.logFileSeq = header.fileSeq;
    draft.header.logFileHeadOffset = header.hdrSize;
    draft.header.logFileTailOffset = header.hdrSize;
    draft.header.log2RotateTime = header.createStamp;
  });
}

/**
 * The backend (mail files) has caught up with the whole log: the tail offset
 * moves to the head, as Dovecot sets it when a syncing process writes
 * dovecot.index.
 */
export function markBackendSynced(state: IndexMapState): IndexMapState {
  return produce(state, (draft) => {
    draft.header.logFileTailOffset = draft.header.logFileHeadOffset;
  });
}

/**
 * Tells a state the log's running modseq at its position. A decoded
 * checkpoint cannot know it (dovecot.index stores only the modseq
 * extension's highest_modseq); the log reader does (readLog's `endModseq`
 * when the checkpoint is at the end of the log). Never lowers it.
 */
export function withLogModseq(state: IndexMapState, modseq: bigint): IndexMapState {
  if (modseq <= state.logModseq) return state;
  // A copy of the top level, not produce(): every opening of a mailbox comes
  // here, and a first produce() in a short command costs ~1.4 ms of cold immer
  // for one field. The state is a plain object whose parts are frozen already.
  return Object.freeze({ ...state, logModseq: modseq });
}
