/**
 * `doveadm purge` for mdbox (dbox.md §4.4, mdbox-purge.c): every file that
 * holds a message nobody references (refcount 0) is rewritten — its live
 * messages are copied, byte for byte, to the file new saves would go to, the
 * map is pointed at the copies and the dead records are expunged in one map
 * transaction, and only then is the old file deleted. Nothing is ever
 * overwritten or truncated in place, so a crash at any point leaves every
 * map record pointing at intact data.
 *
 * The same machinery moves single messages between primary and ALT storage
 * (altmove): their file is purged with those messages written to the other
 * storage.
 */
import { promises as fsp } from "node:fs";
import { MailCorruptedError } from "../../shared/errors.js";
import type { FileHandle } from "node:fs/promises";
import type { LogRecord } from "../../log/types.js";
import { locateDboxBody } from "../dbox/file-format.js";
import { walkDboxMetadata } from "../dbox/metadata.js";
import { decodeDboxFileHeader } from "../dbox/file-header.js";
import { tryFlockExclusive } from "../dbox/flock.js";
import { AppendSession } from "./append-session.js";
import type { MdboxContext } from "./context.js";
import { highestFileIdRecords, mapRecordRecords } from "../../projections/mdbox-map-format.js";
import { forEachMapRow, mapHeader, type MapEntry } from "../../projections/mdbox-map-view.js";
import type { IndexMapState } from "../../projections/state.js";
import { findReferencedMapUids } from "./referenced-map-uids.js";
import { repairLowRefcounts } from "./refcount-repair.js";
import { statIfExists } from "../../shared/stat-if-exists.js";
import { WholeFileReader } from "../../shared/whole-file-reader.js";
import { PurgeListing } from "./purge-listing.js";

/** What a purge should also do. */
export interface PurgeOptions {
  /** Map uids to move to ALT storage (altmove). */
  readonly moveToAlt?: ReadonlySet<number>;
  /** Map uids to move back to primary storage. */
  readonly moveFromAlt?: ReadonlySet<number>;
  /**
   * Before deleting a refcount-0 message, check that no mailbox index still
   * points at it (default true). A crash between an expunge's map update and
   * its mailbox record leaves a refcount too low; this keeps such a message.
   */
  readonly verifyReferences?: boolean;
}

/** What a purge did, file by file and message by message. */
export interface PurgeResult {
  /** Files rewritten and deleted. */
  readonly purgedFileIds: number[];
  /** Map uids whose data was copied to another file (or storage). */
  readonly movedMapUids: number[];
  /** Refcount-0 map uids expunged with their data. */
  readonly expungedMapUids: number[];
  /** Files left alone: locked by another process, or changed under us (try again later). */
  readonly skippedFileIds: number[];
  /** Files whose contents do not match the map (a rebuild is needed). */
  readonly corruptFileIds: number[];
  /** Refcount-0 map uids kept because a mailbox index still points at them. */
  readonly stillReferencedMapUids: number[];
  /** Of those, the ones whose refcount was raised back (see refcount-repair.ts). */
  readonly repairedMapUids: number[];
  /**
   * m.N files no map record points at: what a crash leaves between a purge's
   * map commit and its unlink. Reported, not deleted: after a lost map the
   * same test would match every file, and only a rebuild can tell.
   */
  readonly orphanFileIds: number[];
}

/** Runs a purge. @throws LockTimeoutError, fs errors; a bad file is reported, not thrown. */
export async function purgeStorage(ctx: MdboxContext, opts: PurgeOptions = {}): Promise<PurgeResult> {
  const result: PurgeResult = {
    purgedFileIds: [], movedMapUids: [], expungedMapUids: [], skippedFileIds: [], corruptFileIds: [],
    stillReferencedMapUids: [], repairedMapUids: [], orphanFileIds: [],
  };
  if (!ctx.map.exists()) return result;
  let state = ctx.map.open().refresh();
  const keep = new Set<number>();
  if (opts.verifyReferences ?? true) {
    const unreferenced = new Set<number>();
    forEachMapRow(state, (e) => {
      if (e.refcount === 0) unreferenced.add(e.mapUid);
    });
    const refs = findReferencedMapUids(ctx.paths, unreferenced);
    // In map-uid order, as the map lists them.
    for (const mapUid of unreferenced) if (refs.referenced.has(mapUid)) keep.add(mapUid);
    result.stillReferencedMapUids.push(...keep);
    if (keep.size > 0) {
      // The look took no lock, so most of these are an expunge still under way elsewhere; the
      // repair counts again under each mailbox's lock and only raises what a crash left too low.
      const repaired = await repairLowRefcounts(ctx, keep, refs.mailboxPrefixes);
      result.repairedMapUids.push(...repaired);
      for (const mapUid of repaired) keep.delete(mapUid);
      state = ctx.map.refresh();
    }
  }
  const fileIds = new Set<number>();
  forEachMapRow(state, (e) => {
    if (e.refcount === 0 && !keep.has(e.mapUid)) fileIds.add(e.fileId);
    const located = opts.moveToAlt?.has(e.mapUid) || opts.moveFromAlt?.has(e.mapUid) ? ctx.paths.locate(e.fileId) : undefined;
    if (located !== undefined && located.alt !== Boolean(opts.moveToAlt?.has(e.mapUid))) fileIds.add(e.fileId);
  });
  const job: FileJob = { ...opts, keep, exclude: fileIds, listing: new PurgeListing(ctx.map, fileIds), reader: new WholeFileReader() };
  for (const fileId of [...fileIds].sort((a, b) => a - b)) await purgeFile(ctx, fileId, job, result);
  result.orphanFileIds.push(...(await findOrphanFiles(ctx)));
  return result;
}

/** The map's expunges carry zero GUIDs (observed). One array for all of them: log records are never modified. */
const ZERO_GUID = new Uint8Array(16);

interface FileJob extends PurgeOptions {
  readonly keep: ReadonlySet<number>;
  readonly exclude: ReadonlySet<number>;
  readonly listing: PurgeListing;
  /** Each file is read into the same buffer: its views are written out before the next file. */
  readonly reader: WholeFileReader;
}

/** mdbox_file_purge(): one file, under its flock. */
async function purgeFile(ctx: MdboxContext, fileId: number, job: FileJob, result: PurgeResult): Promise<void> {
  const located = ctx.paths.locate(fileId);
  if (located === undefined) {
    await expungeDeadRecordsOf(ctx, fileId, job.keep, result);
    return;
  }
  let fh: FileHandle;
  try {
    fh = await fsp.open(located.path, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  const session = new AppendSession(ctx.paths, { rotateSizeBytes: ctx.settings.rotateSizeBytes, sync: ctx.settings.fsyncFiles ?? true, excludeFileIds: job.exclude });
  try {
    if (!(await tryFlockExclusive(fh.fd, located.path))) {
      result.skippedFileIds.push(fileId);
      return;
    }
    // Another purge may have deleted it between our open and our lock.
    const st = await fh.stat();
    const now = await statIfExists(located.path);
    if (now === undefined || now.ino !== st.ino) return;

    const listed = job.listing.entriesOf(fileId);
    const msgs = listed.entries;
    const bytes = await job.reader.read(fh, st.size);
    const plan = planCopies(bytes, located.path, msgs, job, located.alt);
    if (plan === undefined) {
      result.corruptFileIds.push(fileId);
      return;
    }
    if (plan.kept.length > 0) {
      // A message still in use pins the file as it is: expunging only the others would
      // leave unmapped bytes between mapped ones, which Dovecot's purge calls corruption.
      result.skippedFileIds.push(fileId);
      return;
    }
    // Views, not copies: `bytes` stays as it is until the next file, after the session's flush below.
    const records = plan.live.map((m) => ({ record: bytes.subarray(m.entry.offset, m.entry.offset + m.entry.size), bodySize: m.bodySize, alt: m.alt }));
    const placements = await session.addAll(records, () => ctx.map.recentFiles());
    const moved = plan.live.map((m, i) => ({ entry: m.entry, placement: placements[i] }));
    await session.flush();

    let committed = false;
    let onListedState = false;
    await ctx.map.transact(async (state) => {
      // Re-check under the lock, unless the map is still the state we planned from: a copy may
      // have referenced a dead message again, or a rebuild moved things.
      onListedState = state === listed.state;
      if (!onListedState && !planStillHolds(state, fileId, plan)) return [];
      const flags = { external: true };
      const records: LogRecord[] = [];
      const highest = mapHeader(state).highestFileId;
      const newHighest = await session.publish(highest);
      if (newHighest !== highest) records.push(...highestFileIdRecords(newHighest, flags));
      records.push(...mapRecordRecords(moved.map((m) => ({ mapUid: m.entry.mapUid, ...session.resolve(m.placement) })), flags));
      if (plan.dead.length > 0) {
        records.push({ type: "expunge-guid", external: true, sync: false, expunges: plan.dead.map((d) => ({ uid: d.mapUid, guid: ZERO_GUID })) });
      }
      committed = true;
      return records.length > 0 ? [records] : [];
    });
    if (!committed) {
      result.skippedFileIds.push(fileId);
      return;
    }
    session.markCommitted();
    if (onListedState) job.listing.afterOwnCommit(ctx.map.state);
    result.movedMapUids.push(...moved.map((m) => m.entry.mapUid));
    result.expungedMapUids.push(...plan.dead.map((d) => d.mapUid));
    // Unlink after the map commit (readers follow the map to the copies), still holding the flock.
    await fsp.unlink(located.path);
    result.purgedFileIds.push(fileId);
  } finally {
    await session.release();
    await fh.close();
  }
}

interface CopyPlan {
  readonly live: Array<{ entry: MapEntry; bodySize: number; alt: boolean }>;
  readonly dead: MapEntry[];
  /** Messages that must stay (still referenced per the mailboxes): the file cannot go. */
  readonly kept: MapEntry[];
}

/**
 * Walks the file from its header, checking that the map's records for it
 * are exactly where the messages are (Dovecot: "purging found mismatched
 * offsets"). Bytes after the last mapped message are the remains of an
 * append that never committed; they go with the file.
 * @returns the plan, or undefined when the file and the map disagree
 *   (including a file that cannot be read as dbox: MailCorruptedError).
 */
function planCopies(bytes: Uint8Array, filePath: string, msgs: readonly MapEntry[], job: FileJob, fileInAlt: boolean): CopyPlan | undefined {
  const plan: CopyPlan = { live: [], dead: [], kept: [] };
  try {
    const { header, headerSize } = decodeDboxFileHeader(bytes, { path: filePath });
    const source = { path: filePath };
    let offset = headerSize;
    for (const e of msgs) {
      if (e.offset !== offset) return undefined;
      // The metadata is checked but not decoded: purge copies it as bytes.
      const { bodyStart, bodyEnd } = locateDboxBody(bytes, offset, header.msgHeaderSize, source);
      const end = walkDboxMetadata(bytes, bodyEnd, source, ignoreItem);
      if (end - offset !== e.size) return undefined;
      if (e.refcount === 0 && job.keep.has(e.mapUid)) {
        plan.kept.push(e);
      } else if (e.refcount === 0) {
        plan.dead.push(e);
      } else {
        const alt = job.moveToAlt?.has(e.mapUid) ? true : job.moveFromAlt?.has(e.mapUid) ? false : fileInAlt;
        plan.live.push({ entry: e, bodySize: bodyEnd - bodyStart, alt });
      }
      offset = end;
    }
  } catch (err) {
    // Not dbox where the map says a message is: the file is reported as corrupt and left alone.
    if (err instanceof MailCorruptedError) return undefined;
    throw err;
  }
  return plan;
}

/**
 * Whether the map still has the plan's records as planned, and no other in
 * this file: each dead one unreferenced, each live one at its offset here.
 * One walk of the map instead of a lookup per message.
 */
function planStillHolds(state: IndexMapState, fileId: number, plan: CopyPlan): boolean {
  const DEAD = -1;
  const wanted = new Map<number, number>();
  for (const d of plan.dead) wanted.set(d.mapUid, DEAD);
  for (const m of plan.live) wanted.set(m.entry.mapUid, m.entry.offset);
  let holding = 0;
  let inFile = 0;
  forEachMapRow(state, (e) => {
    if (e.fileId !== fileId) return;
    inFile++;
    const offset = wanted.get(e.mapUid);
    if (offset !== undefined && (offset === DEAD ? e.refcount === 0 : e.offset === offset)) holding++;
  });
  return holding === wanted.size && inFile === wanted.size;
}

function ignoreItem(): void {
  // planCopies() only needs where each metadata block ends.
}

/** The file is gone: its refcount-0 records have nothing left to purge (mdbox_map_remove_file_id). */
async function expungeDeadRecordsOf(ctx: MdboxContext, fileId: number, keep: ReadonlySet<number>, result: PurgeResult): Promise<void> {
  const dead: number[] = [];
  await ctx.map.transact(async (state) => {
    if (ctx.paths.locate(fileId) !== undefined) return [];
    forEachMapRow(state, (e) => {
      if (e.fileId === fileId && e.refcount === 0 && !keep.has(e.mapUid)) dead.push(e.mapUid);
    });
    if (dead.length === 0) return [];
    return [[{ type: "expunge-guid", external: true, sync: false, expunges: dead.map((uid) => ({ uid, guid: ZERO_GUID })) }]];
  });
  result.expungedMapUids.push(...dead);
}

/** m.N files (primary or ALT) that no map record points at, looked at under the map lock (where no save is half-way). */
async function findOrphanFiles(ctx: MdboxContext): Promise<number[]> {
  let orphans: number[] = [];
  await ctx.map.transact(async (state) => {
    const used = new Set<number>();
    forEachMapRow(state, (e) => used.add(e.fileId));
    orphans = (await ctx.paths.listFiles()).filter((f) => !used.has(f.fileId)).map((f) => f.fileId);
    return [];
  });
  return orphans;
}
