import { LogCorruptedError } from "../errors.js";
import { isInternalFlagUpdate } from "../log/records/flag-update.js";
import type { LogPosition, LogTransaction, UidRange } from "../log/types.js";

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
  /** Visible messages whose system flags may have changed. */
  flagsChanged: number[];
  /** Visible messages whose keywords may have changed. */
  keywordsChanged: number[];
  /** Visible messages whose modseq was raised. */
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
 * Advances `view` over `transactions` (the log from view.position on, in
 * order) and returns the new view with what changed. Throws
 * LogCorruptedError if an append does not raise the UIDs.
 */
export function syncView(
  view: MailboxView,
  transactions: readonly LogTransaction[],
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
  const visible = (uid: number) => seqOf(view, uid) !== undefined || appendedSet.has(uid);
  const forEachVisible = (ranges: readonly UidRange[], target: Set<number>) => {
    for (const r of ranges) {
      for (const uid of visibleIn(view, r, appended)) if (!expungedNow.has(uid) && !pending.has(uid)) target.add(uid);
    }
  };

  for (const tx of transactions) {
    for (const entry of tx.entries) {
      const r = entry.record;
      switch (r.type) {
        case "append":
          for (const m of r.messages) {
            if (m.uid <= lastUid) {
              throw new LogCorruptedError(`append of uid ${m.uid} after uid ${lastUid}`, {
                fileSeq: entry.position.fileSeq, offset: entry.position.offset,
              });
            }
            lastUid = m.uid;
            appended.push(m.uid);
            appendedSet.add(m.uid);
          }
          break;
        case "expunge":
        case "expunge-guid": {
          if (!r.external) break; // a request, not an expunge
          const uids = r.type === "expunge" ? r.ranges.flatMap((range) => visibleIn(view, range, appended)) : r.expunges.map((e) => e.uid);
          for (const uid of uids) {
            if (!visible(uid)) continue;
            if (applyExpunges || appendedSet.has(uid)) expungedNow.add(uid);
            else pending.add(uid);
          }
          break;
        }
        case "flag-update":
          if (r.updates.some((u) => !isInternalFlagUpdate(u))) {
            forEachVisible(r.updates.filter((u) => !isInternalFlagUpdate(u)), flags);
            forEachVisible(r.updates.filter((u) => !isInternalFlagUpdate(u)), modseqs);
          }
          break;
        case "keyword-update":
        case "keyword-reset":
          forEachVisible(r.ranges, keywords);
          forEachVisible(r.ranges, modseqs);
          break;
        case "modseq-update":
          for (const u of r.updates) if (u.uid !== 0) forEachVisible([{ uid1: u.uid, uid2: u.uid }], modseqs);
          break;
        default:
          break;
      }
      if (entry.modseq > highestModseq) highestModseq = entry.modseq;
    }
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

/** UIDs in `range` that the view shows or that this sync appended, ascending. */
function visibleIn(view: MailboxView, range: UidRange, appended: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = lowerBound(view.uids, range.uid1); i < view.uids.length && view.uids[i] <= range.uid2; i++) out.push(view.uids[i]);
  for (const uid of appended) if (uid >= range.uid1 && uid <= range.uid2) out.push(uid);
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

function lowerBound(uids: Uint32Array, uid: number): number {
  let lo = 0;
  let hi = uids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (uids[mid] < uid) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
