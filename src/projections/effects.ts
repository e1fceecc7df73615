/**
 * The effects of a transaction: what applying it REALLY did to the index
 * map, per UID, in log order. Dovecot's view sync learns the same from
 * mail_index_sync_record() (mail-index-view-sync.c): the fold is the one
 * place that knows whether a record changed anything, so every consumer
 * (view sync, change streams, the Maildir/mbox file updates) reads effects
 * instead of interpreting records a second time.
 *
 * Rules, all enforced by the appliers that emit them (apply-*.ts):
 * - An update of a UID that does not exist, or one that changes nothing
 *   (a flag already set, a keyword already absent), has no effect.
 * - A UID range `uid1..uid2` stands for every message that existed with a
 *   UID in it at that point of the transaction (consecutive messages; UIDs
 *   between them are absent, as in Dovecot's seq ranges).
 * - Flag masks are the IMAP-visible bits (MAIL_FLAGS_NONRECENT) that changed:
 *   `add` bits were clear and are now set, `remove` bits the opposite.
 *   Storage-private bits (DIRTY, BACKEND) are not effects.
 * - Modseq effects follow the per-message modseq field, so there are none
 *   while the `modseq` extension does not track messages.
 * - Extension records (EXT_*) and header updates have no per-message
 *   effects: they are storage-internal, and Dovecot never uses them for the
 *   keywords or modseq fields.
 *
 * Collecting effects costs objects, so it is off unless asked for
 * (`applyTransactionWithEffects`); replay never pays for it.
 */
import { assertNever } from "../shared/errors.js";
import type { LogPosition } from "../log/types.js";

/** One change to the mailbox, in the order the transaction made it. */
export type Effect =
  /** A new message (flags: the whole flags byte it was appended with). */
  | { readonly type: "append"; readonly uid: number; readonly flags: number }
  | { readonly type: "flags"; readonly uid1: number; readonly uid2: number; readonly add: number; readonly remove: number; readonly external: boolean }
  /** `keyword` is spelled as the index registered it first (names compare ASCII case-insensitively). */
  | { readonly type: "keywords"; readonly uid1: number; readonly uid2: number; readonly keyword: string; readonly action: "add" | "remove"; readonly external: boolean }
  /** Messages that had keywords and lost all of them (KEYWORD_RESET). */
  | { readonly type: "keywords-reset"; readonly uid1: number; readonly uid2: number; readonly external: boolean }
  /** EXTERNAL expunges: the messages are gone. */
  | { readonly type: "expunge"; readonly uid1: number; readonly uid2: number }
  /** Internal expunges: a request the backend has to carry out; the messages still exist. `guid` from EXPUNGE_GUID. */
  | { readonly type: "expunge-request"; readonly uid1: number; readonly uid2: number; readonly guid?: Uint8Array }
  /**
   * The messages' modseq field was raised to `modseq`: by a change to them
   * (in the same record), or, `explicit`, by a MODSEQ_UPDATE (one UID each).
   */
  | { readonly type: "modseq"; readonly uid1: number; readonly uid2: number; readonly modseq: bigint; readonly explicit: boolean }
  | { readonly type: "attribute"; readonly key: string; readonly scope: "private" | "shared"; readonly action: "set" | "unset" }
  /** INDEX_DELETED: `external` = the deletion is done, otherwise requested. */
  | { readonly type: "mailbox-deleted"; readonly external: boolean }
  /** INDEX_UNDELETED: a deletion (external) or a deletion request was undone. */
  | { readonly type: "mailbox-undeleted"; readonly external: boolean };

export type EffectType = Effect["type"];

/** The effects of one committed transaction. */
export interface TransactionEffects {
  /** Where the transaction starts and ends (its LogTransaction's position and end). */
  readonly position: LogPosition;
  readonly end: LogPosition;
  /** The log's running modseq after the transaction. */
  readonly modseq: bigint;
  /** Every record carried EXTERNAL: a backend sync, not a client's request. */
  readonly external: boolean;
  readonly effects: readonly Effect[];
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type RangeEffect = Mutable<Extract<Effect, { uid1: number }>>;

/** What a run changes: runs of different dimensions commute, runs of one dimension keep their order. */
const enum Dimension {
  FLAGS,
  KEYWORDS,
  MODSEQ,
  COUNT,
}

function dimensionOf(type: RangeEffect["type"]): Dimension {
  switch (type) {
    case "flags":
      return Dimension.FLAGS;
    case "keywords":
    case "keywords-reset":
      return Dimension.KEYWORDS;
    case "modseq":
      return Dimension.MODSEQ;
    case "expunge":
    case "expunge-request":
      // Emitted whole (push), never as runs.
      return Dimension.COUNT;
    default:
      return assertNever(type);
  }
}

/**
 * Collects effects while the fold runs. Consecutive messages that get the
 * same change become one range effect, so a flag change over a million
 * messages (and the modseq raise that goes with it) is two objects, not two
 * million. A run grows only by the message right after its last one
 * (index + 1), which is what makes a range exact: no other message lies
 * between uid1 and uid2. One run is open per dimension (flags, keywords,
 * modseq): a flag run may grow past a keyword effect, which changes
 * something else, but never past another flag effect, an append or an
 * expunge (those move record indexes and close every run).
 */
export class EffectsCollector {
  readonly effects: Effect[] = [];
  /** Per dimension: the effect the next message may extend, and the record index of its last message. */
  private readonly open: (RangeEffect | undefined)[] = new Array(Dimension.COUNT).fill(undefined);
  private readonly openIndex: number[] = new Array(Dimension.COUNT).fill(-1);

  /** Closes every open run: the next message starts new effects. */
  private push(effect: Effect): void {
    this.open.fill(undefined);
    this.effects.push(effect);
  }

  private extendable(index: number, type: RangeEffect["type"]): RangeEffect | undefined {
    const d = dimensionOf(type);
    const open = this.open[d];
    return open !== undefined && open.type === type && this.openIndex[d] === index - 1 ? open : undefined;
  }

  private extend(index: number, open: RangeEffect, uid: number): void {
    open.uid2 = uid;
    this.openIndex[dimensionOf(open.type)] = index;
  }

  private startRun(index: number, effect: RangeEffect): void {
    const d = dimensionOf(effect.type);
    this.effects.push(effect);
    this.open[d] = effect;
    this.openIndex[d] = index;
  }

  append(uid: number, flags: number): void {
    this.push({ type: "append", uid, flags });
  }

  /**
   * Messages at records index1..index2 (consecutive; uids uid1..uid2) had
   * visible bits `add` set and `remove` cleared: the applier reports a run
   * of rows with one change at once (a flag change of a whole mailbox is one
   * call, not one per message).
   */
  flags(index1: number, uid1: number, index2: number, uid2: number, add: number, remove: number, external: boolean): void {
    const open = this.extendable(index1, "flags");
    if (open !== undefined && open.type === "flags" && open.add === add && open.remove === remove && open.external === external) {
      this.extend(index2, open, uid2);
      return;
    }
    this.startRun(index2, { type: "flags", uid1, uid2, add, remove, external });
  }

  keyword(index: number, uid: number, keyword: string, action: "add" | "remove", external: boolean): void {
    const open = this.extendable(index, "keywords");
    if (open !== undefined && open.type === "keywords" && open.keyword === keyword && open.action === action && open.external === external) {
      this.extend(index, open, uid);
      return;
    }
    this.startRun(index, { type: "keywords", uid1: uid, uid2: uid, keyword, action, external });
  }

  keywordsReset(index: number, uid: number, external: boolean): void {
    const open = this.extendable(index, "keywords-reset");
    if (open !== undefined && open.type === "keywords-reset" && open.external === external) {
      this.extend(index, open, uid);
      return;
    }
    this.startRun(index, { type: "keywords-reset", uid1: uid, uid2: uid, external });
  }

  /** Requests of whole index ranges (EXPUNGE without EXTERNAL); EXPUNGE_GUID's one UID each, with its GUID. */
  expungeRequest(uid1: number, uid2: number, guid?: Uint8Array): void {
    this.push(guid === undefined ? { type: "expunge-request", uid1, uid2 } : { type: "expunge-request", uid1, uid2, guid });
  }

  expunge(uid1: number, uid2: number): void {
    this.push({ type: "expunge", uid1, uid2 });
  }

  /** Message at record `index` had its modseq field raised to `modseq`. */
  modseq(index: number, uid: number, modseq: bigint, explicit: boolean): void {
    // Explicit raises stay one UID each, as MODSEQ_UPDATE names them (change streams report them per UID).
    if (explicit) this.startRun(index, { type: "modseq", uid1: uid, uid2: uid, modseq, explicit });
    else this.modseqRun(index, uid, index, uid, modseq);
  }

  /** Messages at records index1..index2 (consecutive; uids uid1..uid2) had their modseq raised to `modseq` by a change to them (as flags()). */
  modseqRun(index1: number, uid1: number, index2: number, uid2: number, modseq: bigint): void {
    const open = this.extendable(index1, "modseq");
    if (open !== undefined && open.type === "modseq" && !open.explicit && open.modseq === modseq) {
      this.extend(index2, open, uid2);
      return;
    }
    this.startRun(index2, { type: "modseq", uid1, uid2, modseq, explicit: false });
  }

  attribute(key: string, scope: "private" | "shared", action: "set" | "unset"): void {
    this.push({ type: "attribute", key, scope, action });
  }

  mailboxDeleted(external: boolean): void {
    this.push({ type: "mailbox-deleted", external });
  }

  mailboxUndeleted(external: boolean): void {
    this.push({ type: "mailbox-undeleted", external });
  }
}

/**
 * Calls `fn` for each message of a range effect, given the state the effect
 * applies to (for "expunge", the state before it). UIDs come from the
 * records, so holes in uid1..uid2 are never visited.
 */
export function forEachUidIn(
  records: { rangeOfUids(uid1: number, uid2: number): [number, number] | undefined; uidAt(index: number): number },
  uid1: number,
  uid2: number,
  fn: (uid: number) => void,
): void {
  const span = records.rangeOfUids(uid1, uid2);
  if (span === undefined) return;
  for (let i = span[0]; i <= span[1]; i++) fn(records.uidAt(i));
}

/** An effect the mail files still have to carry out when the files follow the log's tail (Maildir, mbox). */
export type FileRequest = Extract<Effect, { type: "flags" | "keywords" | "keywords-reset" | "expunge-request" }>;

/**
 * The requests among `effects` (of transactions after the tail, in log
 * order) that the mail files do not show yet: internal flag and keyword
 * changes and expunge requests. EXTERNAL effects are in the files already;
 * appends are files, done expunges are gone, the rest lives in the index only.
 */
export function* fileRequests(effects: Iterable<TransactionEffects>): Generator<FileRequest> {
  for (const tx of effects) {
    for (const e of tx.effects) {
      switch (e.type) {
        case "flags":
        case "keywords":
        case "keywords-reset":
          if (!e.external) yield e;
          break;
        case "expunge-request":
          yield e;
          break;
        case "append":
        case "expunge":
        case "modseq":
        case "attribute":
        case "mailbox-deleted":
        case "mailbox-undeleted":
          break;
        default:
          assertNever(e);
      }
    }
  }
}
