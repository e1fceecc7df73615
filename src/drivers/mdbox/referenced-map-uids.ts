/**
 * Purge's second opinion before deleting data: which refcount-0 map uids a
 * mailbox index still points at (a crash between an expunge's map update
 * and its mailbox record leaves one). Only the `mdbox` field of each record
 * is read, in place: building a whole record per message of every mailbox
 * was a third of a purge's CPU time and most of its garbage (issue #11).
 */
import * as fs from "node:fs";
import { loadState, loadStateFrom } from "../../index-io/load-state.js";
import type { IndexMapState } from "../../projections/state.js";
import { isCorruptionError } from "../../shared/errors.js";
import { listDboxMailboxes } from "../dbox/mailbox-tree.js";
import type { DboxLayout } from "../dbox/layout.js";
import { mdboxMapUidAt, mdboxRecordOffset } from "./mailbox-format.js";

/** What findReferencedMapUids() found. */
export interface MapUidReferences {
  /** The candidates some mailbox record points at. */
  readonly referenced: Set<number>;
  /** Index prefixes of the mailboxes holding those records. */
  readonly mailboxPrefixes: string[];
}

/**
 * Looks for `candidates` in every mailbox whose log (or dovecot.index) can
 * be read, without locks: what countReferences() counts of
 * snapshotAllMailboxes(). A mailbox whose index is corrupt is left out, as
 * there. `keptState`: a state this process still holds of a mailbox's log
 * (a mailbox closed a moment ago), brought up to date instead of loading
 * the mailbox's index (issue #11: a 20k purge loaded INBOX's 640 KB
 * dovecot.index right after the expunge that had it in memory).
 * @throws fs errors other than corruption (an unreadable mailbox must not pass for one without references).
 */
export function findReferencedMapUids(layout: DboxLayout, candidates: ArrayLike<number>, keptState?: (prefix: string) => IndexMapState | undefined): MapUidReferences {
  const found: MapUidReferences = { referenced: new Set(), mailboxPrefixes: [] };
  if (candidates.length === 0) return found;
  const isCandidate = bitSetOf(candidates);
  for (const name of listDboxMailboxes(layout.root)) {
    const prefix = layout.indexPrefix(name);
    const state = loadIfReadable(prefix, keptState?.(prefix));
    if (state === undefined) continue;
    let hit = false;
    forEachMailboxMapUid(state, (mapUid) => {
      if (!isCandidate(mapUid)) return;
      found.referenced.add(mapUid);
      hit = true;
    });
    if (hit) found.mailboxPrefixes.push(prefix);
  }
  return found;
}

/**
 * Membership in `values` as a bit per value from the least to the most:
 * every record of every mailbox is tested, and a Set lookup each was most
 * of the look (issue #11: a purge after expunging half of the mailbox tests
 * against the other half's map uids).
 */
function bitSetOf(values: ArrayLike<number>): (value: number) => boolean {
  let min = values[0];
  let max = values[0];
  for (let i = 1; i < values.length; i++) {
    if (values[i] < min) min = values[i];
    else if (values[i] > max) max = values[i];
  }
  const words = Math.floor((max - min) / 32) + 1;
  // Sparse values far apart (map uids are u32s): a Set rather than a huge bitmap.
  if (words > 4 * values.length + 1024) {
    const set = new Set(Array.from(values));
    return (value) => set.has(value);
  }
  const bits = new Uint32Array(words);
  for (let i = 0; i < values.length; i++) {
    const at = values[i] - min;
    bits[at >>> 5] |= 1 << (at & 31);
  }
  return (value) => value >= min && value <= max && (bits[(value - min) >>> 5] & (1 << ((value - min) & 31))) !== 0;
}

/** Calls `visit` with the map uid of every record of a mailbox `state` that has one, reading the rows in place. */
export function forEachMailboxMapUid(state: IndexMapState, visit: (mapUid: number) => void): void {
  const mdboxAt = mdboxRecordOffset(state);
  if (mdboxAt < 0) return;
  const recordSize = state.records.recordSize;
  state.records.forEachChunk((rows) => {
    for (let at = mdboxAt; at < rows.length; at += recordSize) {
      const mapUid = mdboxMapUidAt(rows, at);
      if (mapUid !== 0) visit(mapUid);
    }
  });
}

/** The state from a mailbox's log (and dovecot.index), or undefined when it has neither. @throws as loadState. */
export function loadLogState(prefix: string): IndexMapState | undefined {
  return fs.existsSync(prefix + ".log") || fs.existsSync(prefix) ? loadState(prefix) : undefined;
}

/**
 * loadLogState (from `kept`, a state of the log this process holds, when
 * given), or undefined when the log is corrupt: its records count for
 * nothing, as in countReferences() (snapshotMailbox's source "log" only).
 */
export function loadIfReadable(prefix: string, kept?: IndexMapState): IndexMapState | undefined {
  try {
    return kept === undefined ? loadLogState(prefix) : loadStateFrom(prefix, kept);
  } catch (err) {
    // A corrupt log: a snapshot falls back to other files, whose records are not counted.
    if (!isCorruptionError(err)) throw err;
    return undefined;
  }
}
