/**
 * What a purge does with one m.N file: which of its messages are copied,
 * which are dropped, and whether the map still says so when it commits.
 */
import { MailCorruptedError } from "../../shared/errors.js";
import { dboxMessageEnd, type DboxBodyEnd } from "../dbox/message-end.js";
import { decodeDboxFileHeader } from "../dbox/file-header.js";
import { FileWindow } from "../dbox/file-window.js";
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

/** A file to plan: open under its flock, and its records as the map lists them. */
export interface PlanInput {
  /** Open read-only (the caller's, which holds the flock). */
  readonly fd: number;
  /** Its size under the flock. */
  readonly sizeBytes: number;
  readonly path: string;
  /** What `rows` index. */
  readonly columns: MapColumns;
  /** The file's records in offset order. */
  readonly rows: Uint32Array;
  readonly alt: boolean;
}

/**
 * Plans each of `files` (see PlanInput) in one call, its messages' loop
 * inside the files' loop: that loop is the purge's hottest code, and a call
 * per file had V8 compile it twice (on-stack during the first file, then
 * whole at the second call: ~30 ms each of a compiler thread, which on two
 * cores competes with the purge itself). The files are read one after the
 * other through windows sharing one buffer, `previous`'s when given.
 *
 * Each file is walked from its header, checking that the map's records for
 * it (`rows` of `columns`, in offset order) are exactly where the messages
 * are (Dovecot: "purging found mismatched offsets"). Bytes after the last
 * mapped message are the remains of an append that never committed; they
 * go with the file. The bodies are read through the window too (messages
 * are mostly small), not into a buffer of the file's size.
 * @returns per file, its plan, or undefined when the file and the map
 *   disagree (including a file that cannot be read as dbox); and the last
 *   window, whose buffer later reads may reuse (its bytes are the last
 *   file's only until then).
 */
export function planFiles(files: readonly PlanInput[], rules: PlanRules, previous: FileWindow | undefined): { plans: (CopyPlan | undefined)[]; last: FileWindow | undefined } {
  const plans: (CopyPlan | undefined)[] = new Array<CopyPlan | undefined>(files.length).fill(undefined);
  const { moveToAlt, moveFromAlt, keep } = rules;
  const found: DboxBodyEnd = { bodyEnd: 0 };
  let window = previous;
  for (let f = 0; f < files.length; f++) {
    const { columns, rows, alt: fileInAlt } = files[f];
    window = FileWindow.over(files[f].fd, files[f].sizeBytes, window);
    const start = fileStart(window, files[f].path);
    if (start === undefined) continue;
    const { msgHeaderSize } = start;
    const { offsets, sizes, mapUids, refcounts } = columns;
    const dead: number[] = [];
    const kept: number[] = [];
    const live = new Uint32Array(rows.length);
    const liveBodySizes = new Uint32Array(rows.length);
    const liveAlt = new Uint8Array(rows.length);
    let liveCount = 0;
    let offset = start.offset;
    let bytes = start.bytes;
    let base = window.base;
    let matches = true;
    for (let k = 0; k < rows.length; k++) {
      const i = rows[k];
      if (offsets[i] !== offset) {
        matches = false;
        break;
      }
      // The window holds the whole message as the map sizes it (a message longer than that does not
      // end where the map says, whatever follows); read on only when it does not yet.
      if (offset + sizes[i] > base + bytes.length) {
        bytes = window.at(offset, sizes[i]);
        base = window.base;
      }
      const at = offset - base;
      // The metadata is only skipped: purge copies it as bytes.
      const end = dboxMessageEnd(bytes, at, msgHeaderSize, found);
      if (end < 0 || end - at !== sizes[i]) {
        matches = false;
        break;
      }
      const mapUid = mapUids[i];
      if (refcounts[i] !== 0) {
        const alt = moveToAlt?.has(mapUid) ? true : moveFromAlt?.has(mapUid) ? false : fileInAlt;
        live[liveCount] = i;
        liveBodySizes[liveCount] = found.bodyEnd - at - msgHeaderSize;
        liveAlt[liveCount++] = alt ? 1 : 0;
      } else if (keep.size > 0 && keep.has(mapUid)) {
        kept.push(mapUid);
      } else {
        dead.push(mapUid);
      }
      offset += sizes[i];
    }
    if (matches) plans[f] = { columns, live: live.subarray(0, liveCount), liveBodySizes: liveBodySizes.subarray(0, liveCount), liveAlt: liveAlt.subarray(0, liveCount), msgHeaderSize, dead, kept };
  }
  return { plans, last: window };
}

/**
 * The file's header read through `window`.
 * @returns the message header size, where the first message starts and
 *   the window's bytes; undefined when the file is not dbox (reported as
 *   corrupt and left alone).
 */
function fileStart(window: FileWindow, path: string): { msgHeaderSize: number; offset: number; bytes: Uint8Array } | undefined {
  const bytes = window.at(0, FILE_HEADER_BYTES);
  try {
    const { header, headerSize } = decodeDboxFileHeader(bytes, { path });
    return { msgHeaderSize: header.msgHeaderSize, offset: headerSize, bytes };
  } catch (err) {
    if (err instanceof MailCorruptedError) return undefined;
    throw err;
  }
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
