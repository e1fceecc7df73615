import type { NewMessage, PreparedSave, SaveStage } from "../drivers/driver.js";
import { InvalidArgumentError, LockTimeoutError } from "../shared/errors.js";
import { parseFlagNames } from "../shared/flags.js";
import type { LogPosition, LogRecord, UidRange } from "../log/types.js";
import type { CommitResult, Mailbox } from "./mailbox.js";
import { isLandedInLog } from "./landed-errors.js";
import { cleanupAfter } from "../shared/cleanup.js";
import { readCopies } from "./mailbox-copy.js";
import { existingUids, normalizeRanges, toRanges, UidRangeBuilder } from "./uid-ranges.js";

export { existingUids, normalizeRanges, toRanges } from "./uid-ranges.js";
import { keywordIndex } from "../projections/apply-keywords.js";
import { KEYWORDS_EXT_NAME } from "../projections/ext-registry.js";
import { extension, position } from "../projections/read.js";
import type { IndexMapState } from "../projections/state.js";

/** How a flag change combines with the current flags. */
export type FlagAction = "add" | "remove" | "replace";

/** A message to append: bytes plus IMAP flags (`\Seen`, keywords …). */
export interface AppendInput {
  body: Uint8Array | string;
  flags?: readonly string[];
  /** INTERNALDATE. */
  receivedDate?: Date;
  guid?: string;
  /**
   * The UID to give the message (Dovecot's mail_save_set_uid, as dsync and
   * imports use it to keep another mailbox's UIDs): above the UID of the
   * message appended before it in the transaction, and at or above the
   * mailbox's next UID at commit. Gaps are kept; next UID becomes the last
   * appended UID + 1. A message without one gets the UID after the previous
   * message's (the mailbox's next UID for the first).
   */
  uid?: number;
  /**
   * The message this append copies (`body` holds its bytes), as copyTo
   * sets it: mdbox and sdbox then share the stored message (a map
   * refcount, a hard link) instead of writing the bytes again.
   */
  copyOf?: { readonly mailbox: Mailbox; readonly uid: number };
}

export interface TransactionCommitResult extends CommitResult {
  /** UIDs given to the appended messages, in append order. */
  appendedUids: number[];
}

type Op =
  | { kind: "flags"; uids: UidRange[]; action: FlagAction; flags: number; keywords: string[] }
  | { kind: "expunge"; uids: UidRange[] };

const internal = { external: false, sync: false } as const;
/** The body of an append whose data stage() wrote (saveMessages takes it from the stage). */
const STAGED_BODY = new Uint8Array(0);
const external = { external: true, sync: false } as const;

/**
 * Changes to one mailbox, written as one log transaction by `commit()`. UIDs
 * are allocated and message files written only then, under the log lock
 * (except data that stage() wrote ahead, which the commit records).
 * Operations on UIDs that no longer exist at commit time are skipped, as
 * Dovecot skips them.
 */
export class MailboxTransaction {
  private readonly appends: NewMessage[] = [];
  /** AppendInput.uid of each append (undefined: the next free one). */
  private readonly requestedUids: Array<number | undefined> = [];
  /** The last AppendInput.uid given (a closure and a search back per append before, issue #11). */
  private lastRequestedUid: number | undefined;
  private readonly ops: Op[] = [];
  private done = false;
  /** What stage() wrote: the data of the first `saveStage.count` appends. */
  private saveStage: SaveStage | undefined;
  private staging = false;
  private heldBodyBytes = 0;

  constructor(private readonly mailbox: Mailbox) {}

  /** @throws InvalidArgumentError when `input.uid` is not a UID above the previous append's requested UID. */
  append(input: AppendInput): this {
    const { flags, keywords } = parseFlagNames(input.flags ?? []);
    if (input.uid !== undefined) {
      const previous = this.lastRequestedUid;
      if (!Number.isInteger(input.uid) || input.uid < 1 || input.uid > MAX_UID) throw new InvalidArgumentError(`append: ${input.uid} is not a UID`);
      if (previous !== undefined && input.uid <= previous) throw new InvalidArgumentError(`append: UID ${input.uid} does not follow UID ${previous} appended before it`);
      this.lastRequestedUid = input.uid;
    }
    this.requestedUids.push(input.uid);
    const body = typeof input.body === "string" ? Buffer.from(input.body) : input.body;
    this.heldBodyBytes += body.length;
    this.appends.push({
      body,
      flags,
      keywords,
      receivedTime: input.receivedDate ? Math.floor(input.receivedDate.getTime() / 1000) : undefined,
      guid: input.guid,
      copyOf: input.copyOf && { backend: input.copyOf.mailbox.backend, state: input.copyOf.mailbox.state, uid: input.copyOf.uid },
    });
    return this;
  }

  /** Changes system flags and keywords, e.g. `flags([{uid1: 1, uid2: 5}], "add", ["\\Seen", "$Label1"])`. */
  flags(uids: readonly UidRange[], action: FlagAction, names: readonly string[]): this {
    const { flags, keywords } = parseFlagNames(names);
    this.ops.push({ kind: "flags", uids: normalizeRanges(uids), action, flags, keywords });
    return this;
  }

  expunge(uids: readonly UidRange[]): this {
    this.ops.push({ kind: "expunge", uids: normalizeRanges(uids) });
    return this;
  }

  /** Copies messages into `target` (in `target`'s next commit-free transaction). */
  async copyTo(target: Mailbox, uids: readonly UidRange[]): Promise<TransactionCommitResult> {
    const tx = target.transaction();
    for (const copy of await readCopies(this.mailbox, uids)) tx.append(copy.input);
    return tx.commit();
  }

  /**
   * Writes the data of the messages appended so far into the storage's
   * files now, where the format can (mdbox, as Dovecot's save writes each
   * message into m.N as it comes), instead of holding their bodies until
   * commit(): a transaction of many messages then holds little per message.
   * The commit still syncs the data and records it; until then no reader
   * sees it, and a transaction that will not be committed must be
   * discard()ed to take it back. Copies (copyOf) and formats that write at
   * commit keep their bodies.
   * @returns the body bytes the transaction still holds.
   */
  async stage(): Promise<number> {
    if (this.done) throw new InvalidArgumentError("transaction already committed");
    if (this.staging) throw new InvalidArgumentError("stage() is already under way");
    const backend = this.mailbox.backend;
    // Formats that write at commit: nothing to stage (and no walk of the appends for it).
    if (backend.openSaveStage === undefined) return this.heldBodyBytes;
    const from = this.saveStage?.count ?? 0;
    let end = from;
    while (end < this.appends.length && this.appends[end].copyOf === undefined) end++;
    if (end === from) return this.heldBodyBytes;
    this.saveStage ??= backend.openSaveStage();
    this.staging = true;
    try {
      await this.saveStage.add(this.appends.slice(from, end));
    } catch (err) {
      // Part of it may be written: the transaction cannot say which of its appends are, so it ends here.
      this.done = true;
      await cleanupAfter(err, () => this.saveStage!.release());
      throw err;
    } finally {
      this.staging = false;
    }
    for (let i = from; i < end; i++) {
      this.heldBodyBytes -= this.appends[i].body.length;
      this.appends[i].body = STAGED_BODY;
    }
    return this.heldBodyBytes;
  }

  /** Body bytes of the appends this transaction holds (not staged). */
  get heldBytes(): number {
    return this.heldBodyBytes;
  }

  /** Whether commit() may (still, or again after a LockTimeoutError) be called. */
  get committable(): boolean {
    return !this.done;
  }

  /** Drops the transaction without committing it; what stage() wrote is taken back. */
  async discard(): Promise<void> {
    if (this.staging) throw new InvalidArgumentError("stage() is under way");
    this.done = true;
    await this.saveStage?.release();
  }

  /**
   * Writes everything in one log transaction. Resolves to the log range
   * written. A commit that failed with LockTimeoutError wrote nothing and
   * may be called again.
   */
  async commit(): Promise<TransactionCommitResult> {
    if (this.done) throw new InvalidArgumentError("transaction already committed");
    if (this.staging) throw new InvalidArgumentError("stage() is under way");
    // With a stage open, the appends since its last add() go there too, so that a commit that
    // fails on a lock leaves only staged data behind and may run again (see SaveStage.retryable).
    if (this.saveStage !== undefined) await this.stage();
    this.done = true;
    let prepared: PreparedSave | undefined;
    let appendedUids: number[] = [];
    let result: CommitResult | undefined;
    try {
      result = await this.mailbox.commitWith(async (state) => {
        const records: LogRecord[] = [];
        if (this.appends.length > 0) {
          const uids = assignAppendUids(state.header.nextUid, this.requestedUids);
          appendedUids = uids;
          prepared = await this.mailbox.backend.saveMessages(state, this.appends, uids, this.saveStage);
          records.push({ type: "append", ...external, messages: this.appends.map((m, i) => ({ uid: uids[i], flags: m.flags })) });
          records.push(...prepared.records);
          const byKeyword = new Map<string, number[]>();
          this.appends.forEach((m, i) => m.keywords.forEach((k) => byKeyword.set(k, [...(byKeyword.get(k) ?? []), uids[i]])));
          for (const [name, uids] of byKeyword) records.push({ type: "keyword-update", ...external, modifyType: "add", name, ranges: toRanges(uids) });
        }
        const lastFlagsOp = this.ops.map((op) => op.kind).lastIndexOf("flags");
        const pending: PendingFlags = { keywords: [...state.keywords], changed: new Map(), expunged: new Set(), track: false };
        // The appends' keyword records above register their new names first.
        for (const r of records) {
          if (r.type === "keyword-update" && keywordIndex(pending.keywords, r.name) < 0) pending.keywords.push(r.name);
        }
        for (const [n, op] of this.ops.entries()) {
          pending.track = n < lastFlagsOp;
          records.push(...(await this.opRecords(state, op, pending)));
        }
        return records.length > 0 ? [records] : [];
      }, { changesMessages: this.appends.length > 0 || this.ops.some((op) => op.kind === "expunge") },
      // Flag changes alone only read the state: built on rows not read yet (Mailbox.commitWith).
      { pureBuild: this.appends.length === 0 && this.ops.every((op) => op.kind === "flags") });
    } catch (err) {
      // A commit hook failed after the log append (e.g. a publish): the log refers to the saved files, keep them.
      if (isLandedInLog(err)) await prepared?.commit();
      else await prepared?.rollback();
      // Another process held a lock: nothing landed, and the staged data can still be recorded by another try.
      if (err instanceof LockTimeoutError && !isLandedInLog(err) && (this.saveStage?.retryable ?? true)) this.done = false;
      else await cleanupAfter(err, () => this.saveStage?.release());
      throw err;
    }
    await prepared?.commit();
    await this.saveStage?.release();
    // Nothing appended: the position and modseq of one state (its header: no row needs reading).
    // Only then: reading it settles (folds, reading every row) what a commit appended.
    const end = result ?? nothingAppendedAt(this.mailbox.headerState);
    return { ...end, appendedUids };
  }

  private async opRecords(state: IndexMapState, op: Op, pending: PendingFlags): Promise<LogRecord[]> {
    if (op.kind === "flags") return flagOpRecords(state, op, pending);
    const uids = existingUids(state, op.uids);
    if (uids.length === 0) return [];
    // Only a later flags operation reads them (a Set entry per expunged message otherwise wasted, issue #11).
    if (pending.track) {
      for (const r of op.uids) {
        const span = state.records.rangeOfUids(r.uid1, r.uid2);
        if (span) for (let i = span[0]; i <= span[1]; i++) pending.expunged.add(i);
      }
    }
    return this.mailbox.backend.expungeMessages(state, uids);
  }
}

/** The highest UID: next_uid, one above it, must still fit its 32 bits. */
const MAX_UID = 0xfffffffe;

/**
 * The UIDs of a transaction's appends: each requested one as is, the others
 * following the previous message's (the first: `nextUid`).
 * @throws InvalidArgumentError when a UID is below `nextUid` (taken, or
 *   given out once and expunged) or they do not ascend (a message without a
 *   requested UID runs into the next requested one), or pass MAX_UID.
 */
export function assignAppendUids(nextUid: number, requested: ReadonlyArray<number | undefined>): number[] {
  const uids: number[] = [];
  let next = nextUid;
  for (const want of requested) {
    const uid = want ?? next;
    if (uid < next) {
      throw new InvalidArgumentError(want === uid && uids.length === 0
        ? `append: UID ${uid} is below the mailbox's next UID ${nextUid}`
        : `append: UID ${uid} is not above the UID before it (${next - 1})`);
    }
    if (uid > MAX_UID) throw new InvalidArgumentError(`append: no UID left after ${next - 1}`);
    uids.push(uid);
    next = uid + 1;
  }
  return uids;
}

/** System flag bits a flag update may set or clear (Dovecot's MAIL_INDEX_FLAGS_MASK). */
const SYSTEM_FLAGS_MASK = 0x1f;

/**
 * What the earlier operations of the transaction being built did to the
 * messages of the state it is built on, so that each operation is filtered
 * against the flags it will really meet. Keyed by 0-based record index in
 * that state (the records do not move while a transaction is built).
 */
interface PendingFlags {
  /** Keyword names by index: the state's, then those the records built so far register. */
  readonly keywords: string[];
  /** Flags and keyword indexes of messages changed by earlier operations. */
  readonly changed: Map<number, { flags: number; keywords: Set<number> }>;
  /** Messages expunged by earlier operations: later ones leave them alone. */
  readonly expunged: Set<number>;
  /** Whether an operation still to come reads `changed` and `expunged` (else they are not kept up). */
  track: boolean;
}

/**
 * One message as an operation sees it. The same object is handed to every
 * visit, moved to the next message: copy what you keep.
 */
interface Current {
  readonly index: number;
  readonly uid: number;
  readonly flags: number;
  has(keyword: number): boolean;
  /** Keyword indexes set, ascending. */
  keywords(): number[];
}

/**
 * The records of one flags operation, following what Dovecot 2.3 logs for
 * `doveadm flags` (index_mail_update_flags/_keywords with the transaction's
 * drop of unnecessary updates), checked against doveadm's own logs:
 * - system flags: one FLAG_UPDATE over the messages it changes, with the
 *   request's full masks (replace: +flags −(~flags & 0x1f));
 * - add/remove keywords: a message is concerned when the request changes any
 *   of its keywords; then every requested keyword gets a record for it (so a
 *   message lacking only one of `kw1 kw2` is in both records, and its modseq
 *   is the second's, as in Dovecot);
 * - replace keywords: a message is concerned when its keywords differ from the
 *   request; it gets an add record for every requested keyword and a remove
 *   for each other keyword it has. Dovecot 2.3 writes no KEYWORD_RESET.
 * Keyword records come in keyword-index order (the mailbox's keywords, then
 * new names in request order). A message the operation does not change gets
 * no record, so its MODSEQ stays.
 */
function flagOpRecords(state: IndexMapState, op: Extract<Op, { kind: "flags" }>, pending: PendingFlags): LogRecord[] {
  const add = op.action === "remove" ? 0 : op.flags;
  const remove = op.action === "add" ? 0 : op.action === "remove" ? op.flags : ~op.flags & SYSTEM_FLAGS_MASK;
  const { known, added } = resolveKeywords(pending.keywords, op.keywords);
  const requested = [...known, ...added.map((_, j) => pending.keywords.length + j)];
  const requestedSet = new Set(requested);
  // Ranges built as the messages come, in uid order (op.uids is normalized): no array of every uid to merge after.
  const flagRanges = new UidRangeBuilder();
  const kwRanges = new UidRangeBuilder();
  /** replace: keyword index → ranges of the uids it is removed from. */
  const removals = new Map<number, UidRangeBuilder>();
  const touched: Array<{ index: number; flags: number; keywords: number[] }> = [];
  // add or remove of system flags only (most flag changes): no keyword of a message is looked at.
  const flagsOnly = requested.length === 0 && op.action !== "replace";
  if (flagsOnly && !pending.track && pending.expunged.size === 0 && pending.changed.size === 0) {
    // Each row's flags byte as it is (nothing earlier in the transaction changed a message):
    // no cursor and two calls fewer per row. A flag change of a whole mailbox visits every
    // record, in a short command before V8 has optimized the loop.
    visitRanges(state, op.uids, (bytes, words, offset) => {
      const flags = bytes[offset + 4];
      if ((flags & add) !== add || (flags & remove) !== 0) flagRanges.add(words[offset >>> 2]);
    });
  } else forEachMessage(state, op.uids, pending, (m) => {
    const flagsChange = (m.flags & add) !== add || (m.flags & remove) !== 0;
    if (flagsChange) flagRanges.add(m.uid);
    let kwChange: boolean;
    if (flagsOnly) kwChange = false;
    else if (op.action === "add") kwChange = requested.some((k) => !m.has(k));
    else if (op.action === "remove") kwChange = known.some((k) => m.has(k));
    else {
      const own = m.keywords();
      kwChange = own.length !== known.length || own.some((k) => !requestedSet.has(k)) || added.length > 0;
      if (kwChange) {
        for (const k of own) {
          if (requestedSet.has(k)) continue;
          let ranges = removals.get(k);
          if (ranges === undefined) removals.set(k, (ranges = new UidRangeBuilder()));
          ranges.add(m.uid);
        }
      }
    }
    if (kwChange) kwRanges.add(m.uid);
    if (pending.track && (flagsChange || kwChange)) touched.push({ index: m.index, flags: m.flags, keywords: m.keywords() });
  });

  const out: LogRecord[] = [];
  if (!flagRanges.isEmpty) {
    out.push({ type: "flag-update", ...internal, updates: flagRanges.ranges.map((r) => ({ ...r, addFlags: add, removeFlags: remove, modseqIncFlag: 0 })) });
  }
  if (!kwRanges.isEmpty) {
    const order = [...new Set([...requested, ...removals.keys()])].sort((a, b) => a - b);
    for (const k of order) {
      const name = k < pending.keywords.length ? pending.keywords[k] : added[k - pending.keywords.length];
      if (requestedSet.has(k)) out.push({ type: "keyword-update", ...internal, modifyType: op.action === "remove" ? "remove" : "add", name, ranges: kwRanges.ranges });
      else out.push({ type: "keyword-update", ...internal, modifyType: "remove", name, ranges: removals.get(k)!.ranges });
    }
    // Records naming a new keyword register it (even a remove), giving it the next index.
    pending.keywords.push(...added);
  }
  if (pending.track) {
    for (const m of touched) {
      const keywords = new Set(m.keywords);
      if (op.action === "replace") keywords.clear();
      for (const k of requested) {
        if (op.action === "remove") keywords.delete(k);
        else keywords.add(k);
      }
      pending.changed.set(m.index, { flags: (m.flags | add) & ~remove, keywords });
    }
  }
  return out;
}

/**
 * Requested keyword names as indexes into `keywords` (matched ASCII
 * case-insensitively, as Dovecot does; duplicates dropped), and the names
 * the mailbox does not have yet, in request order (first spelling kept).
 */
function resolveKeywords(keywords: readonly string[], names: readonly string[]): { known: number[]; added: string[] } {
  const known: number[] = [];
  const added: string[] = [];
  for (const name of names) {
    const k = keywordIndex(keywords, name);
    if (k >= 0) {
      if (!known.includes(k)) known.push(k);
    } else if (keywordIndex(added, name) < 0) added.push(name);
  }
  return { known, added };
}

/**
 * Calls `visit` for each existing, not yet expunged message of `ranges`, in
 * uid order, with its flags and keywords as the transaction so far leaves
 * them. One range lookup per range, and no allocation per message: a flags
 * operation on a whole mailbox visits every record.
 */
function forEachMessage(state: IndexMapState, ranges: readonly UidRange[], pending: PendingFlags, visit: (m: Current) => void): void {
  const ext = extension(state, KEYWORDS_EXT_NAME);
  const cursor = new MessageCursor(ext === undefined ? 0 : ext.recordOffset, ext === undefined ? 0 : ext.recordSize * 8, pending.keywords);
  const { expunged, changed } = pending;
  visitRanges(state, ranges, (bytes, words, offset, index) => {
    if (expunged.size > 0 && expunged.has(index)) return;
    visit(cursor.moveTo(bytes, words, offset, index, changed.size > 0 ? changed.get(index) : undefined));
  });
}

/** Calls `visit` with each existing record of `ranges` (ascending uid ranges), as RecordReader.visitRows does. */
function visitRanges(
  state: IndexMapState, ranges: readonly UidRange[], visit: (bytes: Uint8Array, words: Uint32Array, offset: number, index: number) => void,
): void {
  for (const r of ranges) {
    const span = state.records.rangeOfUids(r.uid1, r.uid2);
    if (span) state.records.visitRows(span[0], span[1], visit);
  }
}

/** The Current of forEachMessage: a record's row, or what earlier operations of the transaction left of it. */
class MessageCursor implements Current {
  index = 0;
  uid = 0;
  flags = 0;
  private bytes: Uint8Array = new Uint8Array(0);
  private keywordBase = 0;
  private changed: { flags: number; keywords: Set<number> } | undefined;

  constructor(private readonly keywordOffset: number, private readonly keywordBits: number, private readonly names: readonly string[]) {}

  moveTo(bytes: Uint8Array, words: Uint32Array, offset: number, index: number, changed: { flags: number; keywords: Set<number> } | undefined): this {
    this.index = index;
    this.uid = words[offset >>> 2];
    this.changed = changed;
    this.bytes = bytes;
    this.keywordBase = offset + this.keywordOffset;
    this.flags = changed ? changed.flags : bytes[offset + 4];
    return this;
  }

  has(k: number): boolean {
    if (this.changed) return this.changed.keywords.has(k);
    return k < this.keywordBits && (this.bytes[this.keywordBase + (k >> 3)] & (1 << (k & 7))) !== 0;
  }

  keywords(): number[] {
    if (this.changed) return [...this.changed.keywords].sort((a, b) => a - b);
    const set: number[] = [];
    // Bits past the known names are never set by a valid log; do not report them.
    for (let k = 0; k < Math.min(this.keywordBits, this.names.length); k++) if (this.has(k)) set.push(k);
    return set;
  }
}

/** A commit result where nothing was appended: `at`'s position, both ends. */
function nothingAppendedAt(at: IndexMapState): { start: LogPosition; end: LogPosition; modseq: bigint } {
  return { start: position(at), end: position(at), modseq: at.logModseq };
}
