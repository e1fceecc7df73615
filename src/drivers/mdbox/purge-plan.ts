/**
 * What a purge does with one m.N file: which of its messages are copied,
 * which are dropped, and whether the map still says so when it commits.
 */
import { MailCorruptedError } from "../../shared/errors.js";
import { dboxMessageEnd, type DboxBodyEnd } from "../dbox/message-end.js";
import { decodeDboxFileHeader } from "../dbox/file-header.js";
import type { FileWindow } from "../dbox/file-window.js";
import { forEachMapRow } from "../../projections/mdbox-map-view.js";
import type { MapColumns } from "../../projections/mdbox-map-columns.js";
import type { IndexMapState } from "../../projections/state.js";

/** What the first read of a file asks for: its header line, which is short. */
const FILE_HEADER_BYTES = 256;

/**
 * The file's messages, sorted by what the purge does with them. The live
 * ones (copied) are columns, not an object each: a purge plans thousands,
 * and an object made only for live messages also deoptimized the walk at
 * the first live message after files of dead ones.
 */
export interface CopyPlan {
  /** What `live` indexes. */
  readonly columns: MapColumns;
  /** The live messages in offset order, as rows of `columns`. */
  readonly live: Uint32Array;
  /** Per live message: its body size (what the rotation rule counts), and 1 when its copy goes to ALT storage. */
  readonly liveBodySizes: Uint32Array;
  readonly liveAlt: Uint8Array;
  /** The file's message header size (its header's `M`): a copy gets a 30-byte one when it differs. */
  readonly msgHeaderSize: number;
  /** Map uids of the messages dropped. */
  readonly dead: number[];
  /** Map uids of messages that must stay (still referenced per the mailboxes): the file cannot go. */
  readonly kept: number[];
}

/** Which messages stay and where live ones go. */
export interface PlanRules {
  /** Refcount-0 map uids a mailbox still points at. */
  readonly keep: ReadonlySet<number>;
  readonly moveToAlt?: ReadonlySet<number>;
  readonly moveFromAlt?: ReadonlySet<number>;
}

/**
 * Walks the file from its header, checking that the map's records for it
 * (`rows` of `columns`, in offset order) are exactly where the messages are
 * (Dovecot: "purging found mismatched offsets"). Bytes after the last
 * mapped message are the remains of an append that never committed; they
 * go with the file. An object is made for live messages only. The file is
 * read through `window` (the bodies too: messages are mostly small), its
 * buffer reused, not into one of the file's size.
 * @returns the plan, or undefined when the file and the map disagree
 *   (including a file that cannot be read as dbox).
 */
export function planCopies(window: FileWindow, filePath: string, columns: MapColumns, rows: Uint32Array, rules: PlanRules, fileInAlt: boolean): CopyPlan | undefined {
  const dead: number[] = [];
  const kept: number[] = [];
  const live = new Uint32Array(rows.length);
  const liveBodySizes = new Uint32Array(rows.length);
  const liveAlt = new Uint8Array(rows.length);
  let liveCount = 0;
  const { offsets, sizes, mapUids, refcounts } = columns;
  const { moveToAlt, moveFromAlt } = rules;
  let msgHeaderSize: number;
  let offset: number;
  let bytes = window.at(0, FILE_HEADER_BYTES);
  let base = window.base;
  try {
    const { header, headerSize } = decodeDboxFileHeader(bytes, { path: filePath });
    msgHeaderSize = header.msgHeaderSize;
    offset = headerSize;
  } catch (err) {
    // Not dbox: the file is reported as corrupt and left alone.
    if (err instanceof MailCorruptedError) return undefined;
    throw err;
  }
  const found: DboxBodyEnd = { bodyEnd: 0 };
  for (let k = 0; k < rows.length; k++) {
    const i = rows[k];
    if (offsets[i] !== offset) return undefined;
    // The window holds the whole message as the map sizes it (a message longer than that does not
    // end where the map says, whatever follows); read on only when it does not yet.
    if (offset + sizes[i] > base + bytes.length) {
      bytes = window.at(offset, sizes[i]);
      base = window.base;
    }
    const at = offset - base;
    // The metadata is only skipped: purge copies it as bytes.
    const end = dboxMessageEnd(bytes, at, msgHeaderSize, found);
    if (end < 0 || end - at !== sizes[i]) return undefined;
    const mapUid = mapUids[i];
    if (refcounts[i] !== 0) {
      const alt = moveToAlt?.has(mapUid) ? true : moveFromAlt?.has(mapUid) ? false : fileInAlt;
      live[liveCount] = i;
      liveBodySizes[liveCount] = found.bodyEnd - at - msgHeaderSize;
      liveAlt[liveCount++] = alt ? 1 : 0;
    } else if (rules.keep.size > 0 && rules.keep.has(mapUid)) {
      kept.push(mapUid);
    } else {
      dead.push(mapUid);
    }
    offset += sizes[i];
  }
  return { columns, live: live.subarray(0, liveCount), liveBodySizes: liveBodySizes.subarray(0, liveCount), liveAlt: liveAlt.subarray(0, liveCount), msgHeaderSize, dead, kept };
}

/**
 * Whether the map still has the plans' records as planned, and no other in
 * their files: each dead one unreferenced, each live one at its offset
 * there. One walk of the map for all the files instead of a lookup per
 * message.
 */
export function plansStillHold(state: IndexMapState, plans: ReadonlyMap<number, CopyPlan>): boolean {
  /** Per map uid: its file, and its offset there (live) or -1 (dead). */
  const wanted = new Map<number, { readonly fileId: number; readonly offset: number }>();
  for (const [fileId, plan] of plans) {
    for (const mapUid of plan.dead) wanted.set(mapUid, { fileId, offset: -1 });
    for (const row of plan.live) wanted.set(plan.columns.mapUids[row], { fileId, offset: plan.columns.offsets[row] });
  }
  let holding = 0;
  let inFiles = 0;
  forEachMapRow(state, (e) => {
    if (!plans.has(e.fileId)) return;
    inFiles++;
    const w = wanted.get(e.mapUid);
    if (w !== undefined && w.fileId === e.fileId && (w.offset < 0 ? e.refcount === 0 : e.offset === w.offset)) holding++;
  });
  return holding === wanted.size && inFiles === wanted.size;
}
