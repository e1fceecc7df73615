/**
 * What the mailbox indexes say about the map: which map uids their records
 * point at, with the GUID and flags of each record. Purge uses it as a
 * second opinion before deleting data; rebuild to recount references and
 * to put messages back.
 */
import { readU32LE } from "../../log/bytes.js";
import { extension, extensionHeader, keywordsAt, NO_KEYWORDS } from "../../projections/read.js";
import { readCheckpoint } from "../../index-io/checkpoint-file.js";
import { isCorruptionError } from "../../shared/errors.js";
import type { ClosedIndexCache } from "../../index-io/closed-index-cache.js";
import { IndexWriter } from "../../index-io/writer.js";
import { forEachMailboxMapUid, loadIfReadable, loadLogState } from "./referenced-map-uids.js";
import type { IndexMapState } from "../../projections/state.js";
import { listDboxMailboxes } from "../dbox/mailbox-tree.js";
import type { DboxLayout } from "../dbox/layout.js";
import { decodeMdboxHeader, GUID_EXT_NAME, GUID_RECORD_SIZE, MDBOX_HDR_EXT_NAME, mdboxRecordOffset, type MdboxIndexHeader } from "./mailbox-format.js";

/** One mailbox record as rebuild and purge need it. */
export interface MailboxMessageRef {
  readonly uid: number;
  readonly flags: number;
  readonly keywords: readonly string[];
  /** 0 when the record has no `mdbox` field. */
  readonly mapUid: number;
  readonly saveDate: number;
  /** All zero when the record has no `guid` field. */
  readonly guid128: Uint8Array;
}

/**
 * A mailbox as read from disk. `source` says what could be read: the log
 * (normal), only dovecot.index, only dovecot.index.backup (the main index is
 * broken), or nothing (lost: no index at all, or nothing readable).
 */
export interface MailboxSnapshot {
  readonly name: string;
  readonly dir: string;
  readonly prefix: string;
  readonly source: "log" | "index" | "backup" | "none";
  readonly state: IndexMapState | undefined;
  readonly header: MdboxIndexHeader | undefined;
  readonly messages: readonly MailboxMessageRef[];
  /** Why the log could not be read (source ≠ "log"), for reports. */
  readonly error?: string;
}

/**
 * @returns the message records of `state`. Fields are read from the rows
 * with extension offsets looked up once, not through a MessageRecord per
 * message (a rebuild reads every record of every mailbox; issue #11).
 */
export function messageRefs(state: IndexMapState): MailboxMessageRef[] {
  const out: MailboxMessageRef[] = [];
  const mdboxAt = mdboxRecordOffset(state);
  const guidExt = extension(state, GUID_EXT_NAME);
  const guidSize = guidExt?.recordSize ?? 0;
  // Every GUID copied into one buffer: a view each, not a buffer each.
  const guids = new Uint8Array(state.records.count * Math.max(guidSize, GUID_RECORD_SIZE));
  const rs = state.records.recordSize;
  let index = 0;
  state.records.forEachChunk((rows) => {
    for (let o = 0; o < rows.length; o += rs, index++) {
      const mapUid = mdboxAt < 0 ? 0 : readU32LE(rows, o + mdboxAt);
      let guid128: Uint8Array;
      if (guidSize > 0) {
        guid128 = guids.subarray(index * guidSize, (index + 1) * guidSize);
        guid128.set(rows.subarray(o + guidExt!.recordOffset, o + guidExt!.recordOffset + guidSize));
      } else {
        guid128 = guids.subarray(index * GUID_RECORD_SIZE, (index + 1) * GUID_RECORD_SIZE);
      }
      out.push({
        uid: readU32LE(rows, o), flags: rows[o + 4],
        keywords: state.keywords.length === 0 ? NO_KEYWORDS : keywordsAt(state, index),
        // A map uid of 0 is no mdbox record (decodeMdboxRecord), and then no save date either.
        mapUid, saveDate: mapUid === 0 ? 0 : readU32LE(rows, o + mdboxAt + 4),
        guid128,
      });
    }
  });
  return out;
}

/** @returns the mailbox's mdbox-hdr, if it has a valid one. */
export function mdboxHeaderOf(state: IndexMapState): MdboxIndexHeader | undefined {
  const ext = extension(state, MDBOX_HDR_EXT_NAME);
  return ext === undefined ? undefined : decodeMdboxHeader(extensionHeader(ext));
}

/**
 * Reads one mailbox: its log, else dovecot.index, else dovecot.index.backup.
 * Never throws for corrupt index files; other errors (permissions, I/O)
 * are thrown, so that nothing takes an unreadable mailbox for an empty or
 * broken one.
 */
export function snapshotMailbox(layout: DboxLayout, name: string): MailboxSnapshot {
  const dir = layout.mailDir(name);
  const prefix = layout.indexPrefix(name);
  let error: string | undefined;
  const attempts: Array<[MailboxSnapshot["source"], () => IndexMapState | undefined]> = [
    ["log", () => loadLogState(prefix)],
    ["index", () => readCheckpoint(prefix)],
    ["backup", () => readCheckpoint(prefix + ".backup")],
  ];
  for (const [source, read] of attempts) {
    try {
      const state = read();
      if (state === undefined) continue;
      return { name, dir, prefix, source, state, header: mdboxHeaderOf(state), messages: messageRefs(state), error };
    } catch (err) {
      // A corrupt file: fall back to the next one, remembering why.
      if (!isCorruptionError(err)) throw err;
      error ??= err.message;
    }
  }
  return { name, dir, prefix, source: "none", state: undefined, header: undefined, messages: [], error };
}

/** Snapshots of every mailbox in the tree. */
export function snapshotAllMailboxes(layout: DboxLayout): MailboxSnapshot[] {
  return listDboxMailboxes(layout.root).map((name) => snapshotMailbox(layout, name));
}

/** How many records of readable (`log`) snapshots point at each map uid. */
export function countReferences(snapshots: readonly MailboxSnapshot[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const s of snapshots) {
    if (s.source !== "log") continue;
    for (const m of s.messages) if (m.mapUid !== 0) counts.set(m.mapUid, (counts.get(m.mapUid) ?? 0) + 1);
  }
  return counts;
}

/**
 * The map uid of every record of the readable (`log`) mailboxes, sorted:
 * a map uid appears once per record pointing at it, so runs of it are what
 * countReferences(snapshotAllMailboxes(layout)) counts. Only the map uid of
 * each record is read, into one typed array instead of a Map entry per map
 * uid: what a rebuild's last phase recounts, merged with the map's rows in
 * map uid order. A mailbox whose state `closed` holds (written a moment
 * ago) is caught up from there instead of read from its files again.
 * @throws as snapshotMailbox (not for corrupt index files).
 */
export async function referencedMapUidsInLogs(layout: DboxLayout, closed?: ClosedIndexCache): Promise<Uint32Array> {
  let out = new Uint32Array(1024);
  let count = 0;
  for (const name of listDboxMailboxes(layout.root)) {
    const prefix = layout.indexPrefix(name);
    const state = closed?.holds(prefix) ? await resumeLogState(prefix, closed) : loadIfReadable(prefix);
    if (state === undefined) continue;
    if (count + state.records.count > out.length) {
      const grown = new Uint32Array(Math.max(2 * out.length, count + state.records.count));
      grown.set(out.subarray(0, count));
      out = grown;
    }
    forEachMailboxMapUid(state, (mapUid) => (out[count++] = mapUid));
  }
  return out.subarray(0, count).sort();
}

/** loadIfReadable through the state `closed` holds, with what was appended since (loaded from the files when it is stale). */
async function resumeLogState(prefix: string, closed: ClosedIndexCache): Promise<IndexMapState | undefined> {
  let writer: IndexWriter;
  try {
    writer = IndexWriter.open(prefix, { closedIndexes: closed });
  } catch (err) {
    // Stale, and then the files are what loadIfReadable would have found: gone, or corrupt.
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || isCorruptionError(err)) return undefined;
    throw err;
  }
  try {
    return writer.state;
  } finally {
    await writer.close();
  }
}
