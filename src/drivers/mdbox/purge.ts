/**
 * `doveadm purge` for mdbox (dbox.md §4.4, mdbox-purge.c): every file that
 * holds a message nobody references (refcount 0) is rewritten — its live
 * messages are copied, byte for byte, to the file new saves would go to, the
 * map is pointed at the copies and the dead records are expunged in one map
 * transaction (one for a batch of files), and only then is the old file
 * deleted. Nothing is ever
 * overwritten or truncated in place, so a crash at any point leaves every
 * map record pointing at intact data.
 *
 * The same machinery moves single messages between primary and ALT storage
 * (altmove): their file is purged with those messages written to the other
 * storage.
 */
import * as fs from "node:fs";
import { MailCorruptedError } from "../../shared/errors.js";
import { DBOX_MSG_HEADER_SIZE } from "../dbox/file-header.js";
import type { ExpungeGuid, LogRecord } from "../../log/types.js";
import { AppendSession, type Placement } from "./append-session.js";
import type { MdboxContext } from "./context.js";
import { highestFileIdRecords, mapRecordRecords } from "../../projections/mdbox-map-format.js";
import { fileEndsOf, forEachMapRow, mapHeader } from "../../projections/mdbox-map-view.js";
import type { IndexMapState } from "../../projections/state.js";
import { findReferencedMapUids } from "./referenced-map-uids.js";
import type { ClosedIndexCache } from "../../index-io/closed-index-cache.js";
import { repairLowRefcounts } from "./refcount-repair.js";
import { allEnded } from "../../shared/all-ended.js";
import { cleanupAfter, cleanupAll } from "../../shared/cleanup.js";
import { closeOnPool } from "../../shared/fd-pool.js";
import { FileWindow } from "../dbox/file-window.js";
import { PurgeListing } from "./purge-listing.js";
import { closeUnplanned, openForPurge, type OpenedFile } from "./purge-open.js";
import { outcomeOf, valueOf, type Outcome } from "../../shared/outcome.js";
import { MapColumns } from "../../projections/mdbox-map-columns.js";
import { planFiles, plansStillHold, type CopyPlan, type PlanInput, type PlanRules } from "./purge-plan.js";

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
  /**
   * States of mailboxes closed a moment ago in this process (the Storage's):
   * the reference check reads only what their logs gained since, instead
   * of loading their indexes.
   */
  readonly closedIndexes?: ClosedIndexCache;
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
  const columns = MapColumns.of(ctx.map.open().refresh(), { path: ctx.paths.mapPrefix });
  const found = refcountZeroAndMoved(ctx, columns, opts);
  const chosen = await filesToPurge(ctx, opts, columns, found, result);
  const { keep, fileIds } = chosen;
  const job: FileJob = { ...opts, keep, exclude: fileIds, listing: new PurgeListing(ctx.map, fileIds, chosen.columns), windows: { last: undefined }, orphansLooked: { done: false } };
  const order = [...fileIds].sort((a, b) => a - b);
  for (let i = 0; i < order.length; i += MAX_BATCH_FILES) {
    const last = i + MAX_BATCH_FILES >= order.length;
    await purgeBatch(ctx, order.slice(i, i + MAX_BATCH_FILES), { ...job, orphans: last ? result.orphanFileIds : undefined }, result);
  }
  // Looked at in the last batch's map transaction, unless that did not commit.
  if (!job.orphansLooked.done) result.orphanFileIds.push(...(await findOrphanFiles(ctx)));
  return result;
}

/**
 * The files to purge, and the refcount-0 map uids to keep because a
 * mailbox index still points at them (opts.verifyReferences; reported in
 * `result`): the candidates' files, less those that hold only kept ones.
 * `columns` are read again when a repair changed the map.
 */
async function filesToPurge(ctx: MdboxContext, opts: PurgeOptions, columns: MapColumns, found: PurgeCandidates, result: PurgeResult): Promise<{ keep: Set<number>; fileIds: Set<number>; columns: MapColumns }> {
  const keep = new Set<number>();
  if (opts.verifyReferences ?? true) {
    const refs = findReferencedMapUids(ctx.paths, found.deadMapUids, opts.closedIndexes && ((prefix) => opts.closedIndexes!.stateOf(prefix)));
    // In map-uid order, as the map lists them.
    for (const mapUid of [...refs.referenced].sort((a, b) => a - b)) keep.add(mapUid);
    result.stillReferencedMapUids.push(...keep);
    if (keep.size > 0) {
      // The look took no lock, so most of these are an expunge still under way elsewhere; the
      // repair counts again under each mailbox's lock and only raises what a crash left too low.
      const repaired = await repairLowRefcounts(ctx, keep, refs.mailboxPrefixes);
      result.repairedMapUids.push(...repaired);
      for (const mapUid of repaired) keep.delete(mapUid);
      columns = MapColumns.of(ctx.map.refresh(), { path: ctx.paths.mapPrefix });
      found = refcountZeroAndMoved(ctx, columns, opts);
    }
  }
  const fileIds = new Set(found.movedFileIds);
  // A file's records mostly come together (saves append in map-uid order): an add per change of file.
  let lastFileId = -1;
  for (let i = 0; i < found.deadMapUids.length; i++) {
    const fileId = found.deadFileIds[i];
    if (fileId === lastFileId || (keep.size > 0 && keep.has(found.deadMapUids[i]))) continue;
    fileIds.add(fileId);
    lastFileId = fileId;
  }
  return { keep, fileIds, columns };
}

/** What one walk of the map finds for a purge. */
interface PurgeCandidates {
  /** The refcount-0 records, in map-uid order, and the file of each. */
  readonly deadMapUids: Uint32Array;
  readonly deadFileIds: Uint32Array;
  /** Files holding a record that moves to the other storage (altmove). */
  readonly movedFileIds: Set<number>;
}

function refcountZeroAndMoved(ctx: MdboxContext, columns: MapColumns, opts: PurgeOptions): PurgeCandidates {
  // One walk (it runs cold, once per purge), into typed arrays as long as the map rather than
  // arrays grown by a push per record.
  const deadMapUids = new Uint32Array(columns.count);
  const deadFileIds = new Uint32Array(columns.count);
  const movedFileIds = new Set<number>();
  const { moveToAlt, moveFromAlt } = opts;
  const moves = moveToAlt !== undefined || moveFromAlt !== undefined;
  let dead = 0;
  for (let i = 0; i < columns.count; i++) {
    const mapUid = columns.mapUids[i];
    const fileId = columns.fileIds[i];
    if (columns.refcounts[i] === 0) {
      deadMapUids[dead] = mapUid;
      deadFileIds[dead++] = fileId;
    }
    if (!moves) continue;
    const toAlt = moveToAlt?.has(mapUid) ?? false;
    const located = toAlt || moveFromAlt?.has(mapUid) ? ctx.paths.locate(fileId) : undefined;
    if (located !== undefined && located.alt !== toAlt) movedFileIds.add(fileId);
  }
  return { deadMapUids: deadMapUids.subarray(0, dead), deadFileIds: deadFileIds.subarray(0, dead), movedFileIds };
}

/**
 * Files purged together: one data sync per file written, one map
 * transaction (and its fdatasync) for all of them. Bounded so that a
 * purge of a large storage does not hold a descriptor and a flock for
 * every file at once.
 */
const MAX_BATCH_FILES = 32;

const NO_BYTES: Uint8Array = new Uint8Array(0);

/** The map's expunges carry zero GUIDs (observed). One array for all of them: log records are never modified. */
const ZERO_GUID = new Uint8Array(16);

interface FileJob extends PlanRules {
  readonly exclude: ReadonlySet<number>;
  readonly listing: PurgeListing;
  /** The last file's window, whose buffer the next file's reads reuse (one file is read at a time). */
  readonly windows: { last: FileWindow | undefined };
  /** Where the batch's map transaction adds the orphan files it finds (the last batch: saves a lock and a walk of its own). */
  readonly orphans?: number[];
  readonly orphansLooked: { done: boolean };
}

/** A file read and planned, its flock held until it is deleted. */
interface PlannedFile {
  readonly fileId: number;
  readonly path: string;
  /** Open read-only, holding the flock. */
  readonly fd: number;
  /** Its size under the flock. */
  readonly sizeBytes: number;
  /** The map state its records were listed from. */
  readonly listedState: IndexMapState;
  readonly plan: CopyPlan;
  /** Where each of plan.live was queued, in the same order. */
  placements: Placement[];
}

/**
 * mdbox_file_purge() for several files at once: each file is read and
 * planned under its flock and its live messages queued in one append
 * session; then the copies are synced (once per file written), one map
 * transaction moves and expunges the records of all the files, and only
 * then are they deleted. Dovecot purges file by file, with a map
 * transaction and fdatasync each: this is the same order of writes with
 * fewer syncs. When the map changed under the batch so that a plan no
 * longer holds, nothing is committed (the copies are taken back) and each
 * file is tried again on its own.
 */
async function purgeBatch(ctx: MdboxContext, fileIds: readonly number[], job: FileJob, result: PurgeResult): Promise<void> {
  const planned: PlannedFile[] = [];
  /** Every file opened and not closed yet: the planned ones once planBatch returns. */
  const opened: OpenedFile[] = [];
  // The directory sync of new files need only end before the unlinks: until then the files
  // being purged still hold every message, so a name lost in a crash loses nothing.
  const session = new AppendSession(ctx.paths, { rotateSizeBytes: ctx.settings.rotateSizeBytes, sync: ctx.settings.fsyncFiles ?? true, excludeFileIds: job.exclude, deferDirSync: true });
  let held: boolean;
  /** The closes of the old files, started once they are unlinked. */
  let closing: Promise<Outcome<void[]>> | undefined;
  const deleteOld = async () => {
    closing = (await deletePurged(session, planned)).closed;
  };
  // Every step runs, whichever fails: each holds descriptors and flocks of its own.
  const release = () => cleanupAll([
    () => session.release(),
    () => (closing !== undefined ? valueOf(closing) : allEnded(opened.map((file) => closeOnPool(file.fd)))),
  ]);
  try {
    planned.push(...(await planBatch(ctx, fileIds, job, result, opened)));
    queueCopies(session, planned, job);
    held = planned.length === 0 || (await commitBatch(ctx, session, planned, job, deleteOld));
    if (held && planned.length > 0) {
      if (closing === undefined) await deleteOld();
      for (const file of planned) {
        for (const row of file.plan.live) result.movedMapUids.push(file.plan.columns.mapUids[row]);
        result.expungedMapUids.push(...file.plan.dead);
        result.purgedFileIds.push(file.fileId);
      }
    }
  } catch (err) {
    await cleanupAfter(err, release);
    throw err;
  }
  await release();
  if (held) return;
  // Unlocked and taken back above: each file again, alone.
  if (fileIds.length === 1) result.skippedFileIds.push(fileIds[0]);
  else for (const file of planned) await purgeBatch(ctx, [file.fileId], job, result);
}

/**
 * Queues the live messages of the planned files in `session`, file after
 * file, each in a transaction of its own as Dovecot purges them (the
 * rotation rule depends on it), read again through a window over the file
 * (the plan only walked them). One call for all the files, as planFiles.
 * Sets each file's placements: where each of plan.live went, in order.
 */
function queueCopies(session: AppendSession, planned: readonly PlannedFile[], job: FileJob): void {
  const recentFiles = () => job.listing.recentFiles();
  for (const file of planned) {
    session.beginTransaction();
    const { plan, path } = file;
    const { live, liveBodySizes, liveAlt, columns } = plan;
    const window = FileWindow.over(file.fd, file.sizeBytes, job.windows.last);
    job.windows.last = window;
    const placements: Placement[] = new Array(live.length);
    let bytes = NO_BYTES;
    let base = 0;
    for (let i = 0; i < live.length; i++) {
      const offset = columns.offsets[live[i]];
      const size = columns.sizes[live[i]];
      // Read on only when the message is not all in the window (the plan made sure the file has it).
      if (offset < base || offset + size > base + bytes.length) {
        bytes = window.at(offset, size);
        base = window.base;
      }
      const at = offset - base;
      // Checked again, not trusted from the plan: a file cut since (a writer ignoring the flock)
      // would give a short copy that the map then points at, and the original is unlinked.
      if (at + size > bytes.length) {
        throw new MailCorruptedError(`message of ${size} bytes ends past the file's end (${window.size} bytes) when copied`, { path, offset });
      }
      // A view of the window's buffer: add() has copied it when it returns, before the window reads again.
      const record = bytes.subarray(at, at + size);
      placements[i] = plan.msgHeaderSize === DBOX_MSG_HEADER_SIZE
        ? session.add(record, liveBodySizes[i], recentFiles, liveAlt[i] === 1)
        : session.addReheadered(record, plan.msgHeaderSize, liveBodySizes[i], recentFiles, liveAlt[i] === 1);
    }
    file.placements = placements;
  }
}

/**
 * Opens and lists each of `fileIds` under its flock, then plans them all
 * (planFiles). Files that cannot be purged now are reported in `result`
 * (skipped, corrupt) and closed; a missing one has its dead records
 * expunged.
 * @param opened where each file opened is added, and removed once closed:
 *   the caller closes what is left, here on a failure too.
 * @returns the planned files (the ones left in `opened`), their flocks held.
 */
async function planBatch(ctx: MdboxContext, fileIds: readonly number[], job: FileJob, result: PurgeResult, opened: OpenedFile[]): Promise<PlannedFile[]> {
  const inputs: PlanInput[] = [];
  const states: IndexMapState[] = [];
  /** Files locked by another process or pinned by a kept message: reported in fileIds' order. */
  const skipped = new Set<number>();
  for (const fileId of fileIds) {
    const outcome = openForPurge(ctx.paths, fileId);
    if (outcome === "missing") await expungeDeadRecordsOf(ctx, fileId, job.keep, result);
    if (outcome === "locked") skipped.add(fileId);
    if (typeof outcome !== "object") continue;
    opened.push(outcome);
    // Listed under the flock (taken when opened): no save can add to the file afterwards.
    const listed = job.listing.entriesOf(fileId);
    inputs.push({ fd: outcome.fd, sizeBytes: outcome.sizeBytes, path: outcome.path, columns: listed.columns, rows: listed.rows, alt: outcome.alt });
    states.push(listed.state);
  }
  const { plans, last } = planFiles(inputs, job, job.windows.last);
  job.windows.last = last;
  const planned: PlannedFile[] = [];
  const unplanned: OpenedFile[] = [];
  for (let k = 0; k < inputs.length; k++) {
    const plan = plans[k];
    const file = opened[k];
    if (plan !== undefined && plan.kept.length === 0) {
      planned.push({ fileId: file.fileId, path: file.path, fd: file.fd, sizeBytes: file.sizeBytes, listedState: states[k], plan, placements: [] });
      continue;
    }
    unplanned.push(file);
    if (plan === undefined) result.corruptFileIds.push(file.fileId);
    // A message still in use pins the file as it is: expunging only the others would
    // leave unmapped bytes between mapped ones, which Dovecot's purge calls corruption.
    else skipped.add(file.fileId);
  }
  for (const fileId of fileIds) if (skipped.has(fileId)) result.skippedFileIds.push(fileId);
  // Not purged now: their flocks are let go at once (not unlinked: quick closes). Taken out of
  // `opened` first, one by one: if a close throws, the caller closes the rest.
  for (const file of unplanned) {
    opened.splice(opened.indexOf(file), 1);
    closeUnplanned(file);
  }
  return planned;
}

/**
 * The batch's old files, once its map commit is written (and synced as
 * the map's fsync mode says): the new names made durable first, then each
 * old file unlinked (readers follow the map to the copies) while its flock
 * is still held, and its close started on the pool: the last close of an
 * unlinked m.N is the kernel freeing its pages, milliseconds per 10 MiB,
 * which overlap the map index rewrite.
 * @returns the closes.
 */
async function deletePurged(session: AppendSession, planned: readonly PlannedFile[]): Promise<{ readonly closed: Promise<Outcome<void[]>> }> {
  session.markCommitted();
  await session.syncPublishedNames();
  // Synchronous: microseconds each, where a trip through the pool costs a wake-up.
  for (const file of planned) fs.unlinkSync(file.path);
  return { closed: outcomeOf(allEnded(planned.map((file) => closeOnPool(file.fd)))) };
}

/**
 * The batch's map transaction, appended once the copies are on disk: new
 * files named, live records pointed at their copies, dead ones expunged.
 * Re-checks the plans under the lock, unless the map is still the state
 * they were made from: a copy may have referenced a dead message again, or
 * a rebuild moved things.
 * @returns false when a plan no longer holds (nothing written).
 */
async function commitBatch(ctx: MdboxContext, session: AppendSession, planned: readonly PlannedFile[], job: FileJob, afterAppend: () => Promise<void>): Promise<boolean> {
  // The copies' last writes and data syncs end before the map lock is taken, as Dovecot's purge
  // flushes before it locks the map: the lock is storage-wide (every save, copy and expunge,
  // doveadm's too, waits on it), and a sync of a batch's copied files takes as long as the disk.
  await session.flush();
  let held = false;
  let onListedState = false;
  await ctx.map.transact(async (state) => {
    onListedState = planned.every((f) => f.listedState === state);
    const records = await batchRecords(ctx, session, planned, job, state, onListedState);
    held = records !== undefined;
    return records !== undefined && records.length > 0 ? [records] : [];
  }, { afterAppend });
  if (held && onListedState) job.listing.afterOwnCommit(ctx.map.state);
  return held;
}

/**
 * The records of the batch's map transaction on `state` (under the map
 * lock): new files named, live records pointed at their copies, dead ones
 * expunged, and the orphan files looked for when this is the last batch.
 * `onListedState`: `state` is the one every plan was made from.
 * @returns undefined when a plan no longer holds.
 */
async function batchRecords(ctx: MdboxContext, session: AppendSession, planned: readonly PlannedFile[], job: FileJob, state: IndexMapState, onListedState: boolean): Promise<LogRecord[] | undefined> {
  if (!onListedState && !plansStillHold(state, new Map(planned.map((f) => [f.fileId, f.plan])))) return undefined;
  const flags = { external: true };
  const records: LogRecord[] = [];
  const highest = mapHeader(state).highestFileId;
  const newHighest = await session.publish(highest);
  if (newHighest !== highest) records.push(...highestFileIdRecords(newHighest, flags));
  // Plain loops: this runs once per purge, cold, where a closure call per message costs.
  const moved = [];
  const dead: ExpungeGuid[] = [];
  for (const f of planned) {
    const { live, columns } = f.plan;
    for (let i = 0; i < live.length; i++) {
      const at = session.resolve(f.placements[i]);
      moved.push({ mapUid: columns.mapUids[live[i]], fileId: at.fileId, offset: at.offset, size: at.size });
    }
    for (let i = 0; i < f.plan.dead.length; i++) dead.push({ uid: f.plan.dead[i], guid: ZERO_GUID });
  }
  records.push(...mapRecordRecords(moved, flags));
  if (dead.length > 0) records.push({ type: "expunge-guid", external: true, sync: false, expunges: dead });
  if (job.orphans !== undefined && !job.orphansLooked.done) {
    // Before this commit the files just named have no records yet: they are not orphans.
    const named = new Set(session.publishedFileIds());
    const used = job.listing.fileIdsInUse(state) ?? fileEndsOf(state).inUse();
    job.orphans.push(...(await orphanFiles(ctx, used)).filter((fileId) => !named.has(fileId)));
    job.orphansLooked.done = true;
  }
  return records;
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
    orphans = await orphanFiles(ctx, fileEndsOf(state).inUse());
    return [];
  });
  return orphans;
}

/** The m.N files, of either storage, not in `used`. */
async function orphanFiles(ctx: MdboxContext, used: ReadonlySet<number>): Promise<number[]> {
  return (await ctx.paths.listFiles()).filter((f) => !used.has(f.fileId)).map((f) => f.fileId);
}
