import { assertNever, LogCorruptedError } from "../shared/errors.js";
import type { LogPosition } from "../log/types.js";
import type { TransactionEffects } from "./effects.js";

/**
 * A mailbox view: IMAP's message sequence numbers (MSNs) as one client sees
 * them. It stays at its log position until synced, and a sync reports what
 * changed. Expunges can be held back while everything else is synced (IMAP
 * may only announce expunges at certain moments): an expunged message keeps
 * its MSN until the view syncs expunges. Pure data; every function returns a
 * new view and never changes its input.
 */
export interface MailboxView {
  /** The log position whose changes (other than held-back expunges) the view reflects. */
  readonly position: LogPosition;
  /** UIDs in MSN order (MSN = index + 1), ascending. */
  readonly uids: Uint32Array;
  /** Expunged UIDs still visible because expunges were not synced yet, ascending. */
  readonly pendingExpunges: readonly number[];
  readonly highestModseq: bigint;
}

/** What one sync changed, in the terms an IMAP server reports. */
export interface ViewChanges {
  /** New messages, ascending UIDs; their MSNs follow the old count. */
  appended: number[];
  /**
   * Messages removed, in the order IMAP's EXPUNGE responses name them: each
   * `seq` is valid after the removals before it.
   */
  expunged: Array<{ uid: number; seq: number }>;
  /** Visible messages whose system flags changed. */
  flagsChanged: number[];
  /** Visible messages whose keywords changed. */
  keywordsChanged: number[];
  /** Visible messages, other than this sync's new ones, whose modseq was raised (none where per-message modseqs are not tracked). */
  modseqChanged: number[];
  highestModseq: bigint;
}

export function createView(position: LogPosition, uids: Uint32Array, highestModseq: bigint): MailboxView {
  return { position, uids: Uint32Array.from(uids), pendingExpunges: [], highestModseq };
}

/** The UID at MSN `seq` (1-based), or undefined. */
export function uidAt(view: MailboxView, seq: number): number | undefined {
  return seq >= 1 && seq <= view.uids.length ? view.uids[seq - 1] : undefined;
}

/** The MSN of `uid`, or undefined when the view does not show it. */
export function seqOf(view: MailboxView, uid: number): number | undefined {
  const i = lowerBound(view.uids, uid);
  return i < view.uids.length && view.uids[i] === uid ? i + 1 : undefined;
}

/** MSNs [first, last] of the visible messages with UIDs in [uid1, uid2], or undefined when none. */
export function seqRange(view: MailboxView, uid1: number, uid2: number): [number, number] | undefined {
  const first = lowerBound(view.uids, uid1);
  const end = lowerBound(view.uids, uid2 + 1);
  return first < end ? [first + 1, end] : undefined;
}

export interface ViewSyncOptions {
  /** Apply expunges (held back ones included); false leaves them pending. Default true. */
  expunges?: boolean;
}

/**
 * Advances `view` over the effects of the transactions from view.position
 * on, in order (`applyTransactionWithEffects` / `advanceWithEffects` on the
 * state at the view's position), and returns the new view with what
 * changed. Only real changes reach a view: a flag update that changed
 * nothing is not in `flagsChanged`. New messages are reported by `appended`;
 * `modseqChanged` leaves them out (their modseq is their append's).
 * Throws LogCorruptedError if an append does not raise the UIDs.
 */
export function syncView(
  view: MailboxView,
  transactions: readonly TransactionEffects[],
  options: ViewSyncOptions = {},
): { view: MailboxView; changes: ViewChanges } {
  const applyExpunges = options.expunges ?? true;
  const appended: number[] = [];
  const expungedNow = new Set<number>(applyExpunges ? view.pendingExpunges : []);
  const pending = new Set<number>(applyExpunges ? [] : view.pendingExpunges);
  const flags = new Set<number>();
  const keywords = new Set<number>();
  const modseqs = new Set<number>();
  let highestModseq = view.highestModseq;
  let position = view.position;
  let lastUid = view.uids.length > 0 ? view.uids[view.uids.length - 1] : 0;
  const appendedSet = new Set<number>();
  const forEachVisible = (uid1: number, uid2: number, target: Set<number>) => {
    for (const uid of visibleIn(view, uid1, uid2, appended)) if (!expungedNow.has(uid) && !pending.has(uid)) target.add(uid);
  };

  for (const tx of transactions) {
    for (const e of tx.effects) {
      switch (e.type) {
        case "append":
          if (e.uid <= lastUid) {
            throw new LogCorruptedError(`append of uid ${e.uid} after uid ${lastUid}`, { fileSeq: tx.position.fileSeq, offset: tx.position.offset });
          }
          lastUid = e.uid;
          appended.push(e.uid);
          appendedSet.add(e.uid);
          break;
        case "expunge":
          for (const uid of visibleIn(view, e.uid1, e.uid2, appended)) {
            if (applyExpunges || appendedSet.has(uid)) expungedNow.add(uid);
            else pending.add(uid);
          }
          break;
        case "flags":
          forEachVisible(e.uid1, e.uid2, flags);
          break;
        case "keywords":
        case "keywords-reset":
          forEachVisible(e.uid1, e.uid2, keywords);
          break;
        case "modseq":
          for (const uid of visibleIn(view, e.uid1, e.uid2, appended)) {
            if (!appendedSet.has(uid) && !expungedNow.has(uid) && !pending.has(uid)) modseqs.add(uid);
          }
          break;
        // Nothing a view shows: the message stays until the backend expunges it; no per-message state.
        case "expunge-request":
        case "attribute":
        case "mailbox-deleted":
        case "mailbox-undeleted":
          break;
        default:
          assertNever(e);
      }
    }
    if (tx.modseq > highestModseq) highestModseq = tx.modseq;
    position = tx.end;
  }

  // New messages expunged within the same sync were never announced: drop them silently.
  const announcedAppends = appended.filter((uid) => !(expungedNow.has(uid) && appendedSet.has(uid)));
  const { uids, expunged } = removeExpunged(view.uids, expungedNow);
  const nextUids = new Uint32Array(uids.length + announcedAppends.length);
  nextUids.set(uids);
  nextUids.set(announcedAppends, uids.length);
  const stillVisible = (uid: number) => !expungedNow.has(uid);
  return {
    view: { position, uids: nextUids, pendingExpunges: [...pending].sort((a, b) => a - b), highestModseq },
    changes: {
      appended: announcedAppends,
      expunged,
      flagsChanged: [...flags].filter(stillVisible).sort((a, b) => a - b),
      keywordsChanged: [...keywords].filter(stillVisible).sort((a, b) => a - b),
      modseqChanged: [...modseqs].filter(stillVisible).sort((a, b) => a - b),
      highestModseq,
    },
  };
}

/** UIDs in uid1..uid2 that the view shows or that this sync appended, ascending. */
function visibleIn(view: MailboxView, uid1: number, uid2: number, appended: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = lowerBound(view.uids, uid1); i < view.uids.length && view.uids[i] <= uid2; i++) out.push(view.uids[i]);
  // Appends are ascending: start at the first one in range.
  for (let i = lowerBound(appended, uid1); i < appended.length && appended[i] <= uid2; i++) out.push(appended[i]);
  return out;
}

/**
 * Removes `gone` from `uids`, reporting each removal with its MSN at the
 * moment it is announced. Ascending order keeps earlier MSNs stable: each
 * removal shifts the later ones down by one.
 */
function removeExpunged(uids: Uint32Array, gone: ReadonlySet<number>): { uids: Uint32Array; expunged: Array<{ uid: number; seq: number }> } {
  if (gone.size === 0) return { uids, expunged: [] };
  const kept = new Uint32Array(uids.length);
  const expunged: Array<{ uid: number; seq: number }> = [];
  let n = 0;
  for (let i = 0; i < uids.length; i++) {
    if (gone.has(uids[i])) expunged.push({ uid: uids[i], seq: n + 1 });
    else kept[n++] = uids[i];
  }
  return { uids: kept.subarray(0, n), expunged };
}

function lowerBound(uids: ArrayLike<number>, uid: number): number {
  let lo = 0;
  let hi = uids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (uids[mid] < uid) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
