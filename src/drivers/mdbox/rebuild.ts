/**
 * Storage rebuild (`doveadm force-resync` on mdbox): when indexes are lost
 * or broken, the m.N files are the truth. Phases, each under at most one
 * lock (never the map and a mailbox together, see MdboxMap):
 *
 * 1. read every m.N and every mailbox index (log, else dovecot.index, else
 *    dovecot.index.backup, which is where flags survive a broken index);
 * 2. under the map lock: fix the map (rebuilding it from scratch when it is
 *    corrupt, with a new uid_validity) and set every refcount to the
 *    number of mailbox records that will point at the message (rebuild-plan.ts);
 * 3. per mailbox, under its lock: point records at the right map uids,
 *    drop records whose message is gone, add the messages put back; a
 *    mailbox whose log is unreadable gets a new log (new UIDVALIDITY: uids
 *    handed out after the backup was written are unknown, so reusing the
 *    old one could show a client a different message under a uid it knows);
 * 4. under the map lock again: raise any refcount below the number of
 *    records now pointing at it (someone saved meanwhile). Counts are only
 *    ever raised here: a refcount too high keeps data, one too low loses it.
 *
 * Assumes nobody else rebuilds at the same time; open Mailbox objects of
 * this process should be closed first (their logs may be replaced).
 *
 * Syncs: the rebuild never changes an m.N file, so a crash can only lose a
 * message later, through a purge trusting a map that does not count it.
 * What prevents that is the order: phase 2's map append is fdatasynced
 * before any mailbox record pointing at it is written (phase 3 syncs each
 * mailbox log before linking it in place, then its dovecot.index). A map
 * log the rebuild creates is not synced on its own: the append's fdatasync
 * flushes the whole file, and a crash before it leaves an empty or torn
 * log that no durable record relies on yet, which every open refuses as
 * corrupt (a purge stops; the next rebuild recreates it), as with
 * Dovecot, which never syncs a new log and keeps its rebuilt map in
 * dovecot.map.index (synced) instead.
 *
 * A map or mailbox log the rebuild creates (index loss) gets the same
 * records Dovecot's force-resync writes to its new logs (an APPEND and one
 * EXT_REC_UPDATE per record extension, naming every message; checked at
 * 20k messages), folded as any log is (the fold copies an EXT_REC_UPDATE's
 * entries for consecutive rows a leaf at a time; issue #11). The order above is kept:
 * the state is built only after its log append returned (synced, for the
 * map), and dovecot.map.index / dovecot.index are written from it only
 * through writeCheckpoint (a temp file, fdatasynced, renamed over), as
 * Dovecot writes them, once the log holds everything they say.
 */
import * as fs from "node:fs";
import type { LogRecord } from "../../log/types.js";
import { generateGuid128 } from "../dbox/guid.js";
import { mailboxDir } from "../dbox/layout.js";
import type { MdboxContext } from "./context.js";
import { guidRecordRecords, initialMailboxRecords, mdboxHeaderRecords, mdboxRecordRecords } from "./mailbox-format.js";
import { referencedMapUidsInLogs, mdboxHeaderOf, messageRefs, snapshotAllMailboxes } from "./mailbox-refs.js";
import { appendRecords, appendRecordsOfColumns, writeMailbox, type CreatedTransactions } from "./mailbox-writer.js";
import { mapHeaderRecords, mapRecordRecordsOfColumns, REFCOUNT_MAX, refIncRecords, refIntro, refSetRecordsOfColumns } from "../../projections/mdbox-map-format.js";
import { forEachMapRow, forEachRefcount, mapHeader } from "../../projections/mdbox-map-view.js";
import { MessageIndex, planMailboxes, planMap, type MailboxPlan, type PlacedMessages } from "./rebuild-plan.js";
import { scanStorageFiles, type BrokenSpot } from "./rebuild-scan.js";
import { expungedGuids } from "./expunged-guids.js";
import { isCorruptionError, MailstoreError } from "../../shared/errors.js";
import { ClosedIndexCache } from "../../index-io/closed-index-cache.js";

/** What a rebuild needs from the storage. */
export interface RebuildOptions {
  /** A fresh UIDVALIDITY for a mailbox that gets a new log (dovecot-uidvalidity). */
  readonly newUidValidity: () => Promise<number>;
}

/** What a rebuild changed. */
export interface RebuildResult {
  /** The map was corrupt or missing and was created anew. */
  readonly mapRecreated: boolean;
  readonly mapExpunged: number[];
  readonly mapAdded: number[];
  /** Messages no mailbox pointed at, put back (metadata `B`, else INBOX). */
  readonly restored: Array<{ mailbox: string; uid: number; mapUid: number }>;
  /** Mailboxes that got a new log, and where their records came from. */
  readonly recreatedMailboxes: Array<{ mailbox: string; from: "index" | "backup" | "none" }>;
  /** Mailbox records dropped because their message is in no m.N file. */
  readonly droppedRecords: Array<{ mailbox: string; uid: number }>;
  /** Places in m.N files that could not be read. */
  readonly broken: BrokenSpot[];
  /** Map uids whose refcount phase 4 had to raise. */
  readonly refcountsRaised: number[];
}

/**
 * Rebuilds the storage from its m.N files (see the module comment).
 * @returns what was changed. @throws LockTimeoutError, fs errors.
 */
export async function rebuildStorage(ctx: MdboxContext, opts: RebuildOptions): Promise<RebuildResult> {
  const scan = await scanStorageFiles(ctx.paths);
  const snapshots = snapshotAllMailboxes(ctx.paths);
  const mapRecreated = await openOrRecreateMap(ctx);
  // Only with the map intact: a lost map says nothing of what a purge did, and
  // then, as Dovecot does, a rebuild errs on the side of bringing messages back.
  const expunged = mapRecreated ? new Set<string>() : expungedGuids(snapshots);
  const oldMapUidValidity = mapRecreated ? undefined : ctx.map.uidValidity;
  const result: RebuildResult = {
    mapRecreated, mapExpunged: [], mapAdded: [], restored: [], recreatedMailboxes: [], droppedRecords: [],
    broken: scan.broken, refcountsRaised: [],
  };

  // Phase 2: the map.
  let index: MessageIndex | undefined;
  let placed: PlacedMessages | undefined;
  let plans: MailboxPlan[] = [];
  await ctx.map.transact(async (state) => {
    const mapPlan = planMap(scan.messages, (visit) => forEachMapRow(state, visit), state.header.nextUid);
    index = new MessageIndex(mapPlan);
    placed = mapPlan.placed;
    const { found, mapUids } = mapPlan.placed;
    const planned = planMailboxes(index, mapPlan.placed, snapshots, oldMapUidValidity, (orig) => restoreTarget(ctx.paths.root, orig), expunged);
    plans = planned.mailboxes;
    // Element by element, not push(...list): a spread of 100k arguments can overflow the stack. Indexed,
    // not for-of: run once, mostly unoptimized, where for-of allocates an iterator result per element.
    for (let k = 0; k < mapPlan.expunge.length; k++) result.mapExpunged.push(mapPlan.expunge[k]);
    pushMapUids(result.mapAdded, mapPlan.append, mapUids);

    const flags = { external: true };
    const header = mapHeader(state);
    const records: LogRecord[] = [
      ...mapHeaderRecords({ highestFileId: Math.max(header.highestFileId, scan.highestFileId), rebuildCount: header.rebuildCount + 1 }, flags),
      // `ref` before the appends: a new map lays its records out once, not again for the intro after them.
      refIntro(flags),
    ];
    if (mapPlan.expunge.length > 0) {
      records.push({ type: "expunge-guid", external: true, sync: false, expunges: mapPlan.expunge.map((uid) => ({ uid, guid: new Uint8Array(16) })) });
    }
    if (mapPlan.append.length > 0) {
      records.push({ type: "append", external: true, sync: false, messages: mapPlan.append.map((i) => ({ uid: mapUids[i], flags: 0 })) });
      records.push(...mapRecordRecordsOfColumns(mapPlan.append, mapUids, found, flags));
    }
    const { refcounts, changed } = changedRefcounts(mapPlan.placed, planned.refcounts);
    records.push(...refSetRecordsOfColumns(changed, mapUids, refcounts, flags));
    return [records];
  });

  // Phase 3: the mailboxes; their states are kept for phase 4's count.
  const closed = new ClosedIndexCache();
  try {
    for (const plan of plans) await fixMailbox(ctx, plan, index!, placed!, oldMapUidValidity, opts, result, closed);
    // Phase 4: nothing may point at a message more often than its refcount says.
    await raiseRefcounts(ctx, await referencedMapUidsInLogs(ctx.paths, closed), result);
  } finally {
    closed.clear();
  }
  return result;
}

/** Adds the map uid of each found message `indexes` to `out` (a function of its own: see changedRefcounts). */
function pushMapUids(out: number[], indexes: readonly number[], mapUids: Uint32Array): void {
  for (let k = 0; k < indexes.length; k++) out.push(mapUids[indexes[k]]);
}

/**
 * The refcounts to write (`planned`, capped at REFCOUNT_MAX), and the found
 * messages whose map record does not have its refcount already: only those
 * are written. A function of its own, not a loop in phase 2's callback: V8
 * compiles a loop that runs long on the stack (OSR), and there it compiled
 * the whole callback with all it inlines, on other threads (--trace-opt),
 * for a loop that runs once.
 */
function changedRefcounts(placed: PlacedMessages, planned: Uint32Array): { refcounts: Uint32Array; changed: number[] } {
  const refcounts = new Uint32Array(planned.length);
  const changed: number[] = [];
  for (let i = 0; i < planned.length; i++) {
    const n = Math.min(planned[i], REFCOUNT_MAX);
    refcounts[i] = n;
    if (!placed.refcountIs(i, n)) changed.push(i);
  }
  return { refcounts, changed };
}

/**
 * Phase 4: raises every refcount below the number of mailbox records now
 * pointing at it. `referenced` (sorted, a map uid once per record) is
 * merged with the map's rows, which come in map uid order too.
 */
async function raiseRefcounts(ctx: MdboxContext, referenced: Uint32Array, result: RebuildResult): Promise<void> {
  await ctx.map.transact(async (state) => {
    const raise: Array<{ mapUid: number; diff: number }> = [];
    let at = 0;
    forEachRefcount(state, (mapUid, refcount) => {
      while (at < referenced.length && referenced[at] < mapUid) at++;
      const first = at;
      while (at < referenced.length && referenced[at] === mapUid) at++;
      const count = at - first;
      if (count > refcount) raise.push({ mapUid, diff: Math.min(count, REFCOUNT_MAX) - refcount });
    });
    for (const r of raise) result.refcountsRaised.push(r.mapUid);
    const records = refIncRecords(raise, { external: true });
    return records.length > 0 ? [records] : [];
  });
}

/**
 * Opens the map; a corrupt one is removed and created anew.
 * @returns true when (re)created.
 * @throws whatever else kept the map from opening (permissions, too many
 *   open files, a lock timeout): the files stay as they are.
 */
async function openOrRecreateMap(ctx: MdboxContext): Promise<boolean> {
  const existed = ctx.map.exists();
  try {
    ctx.map.open({ newLogUnsynced: true }).refresh();
    return !existed;
  } catch (err) {
    // Only a map shown to be corrupt is removed; it is rebuilt from the m.N files below.
    if (!isCorruptionError(err)) throw err;
    await ctx.map.close();
    for (const suffix of ["", ".log", ".log.2", ".cache"]) fs.rmSync(ctx.paths.mapPrefix + suffix, { force: true });
    ctx.map.open({ newLogUnsynced: true });
    return true;
  }
}

/** Where a message with metadata B = `orig` goes back to: that mailbox if the name is usable, else INBOX. */
function restoreTarget(root: string, orig: string | undefined): string {
  if (orig === undefined || orig === "" || orig.toUpperCase() === "INBOX") return "INBOX";
  try {
    mailboxDir(root, orig);
    return orig;
  } catch (err) {
    // A name no mailbox can have (an empty level, "." or ".."): INBOX takes the message.
    if (err instanceof MailstoreError && err.code === "INVALID_ARGUMENT") return "INBOX";
    throw err;
  }
}

async function fixMailbox(
  ctx: MdboxContext, plan: MailboxPlan, index: MessageIndex, placed: PlacedMessages, oldMapUidValidity: number | undefined,
  opts: RebuildOptions, result: RebuildResult, closed: ClosedIndexCache,
): Promise<void> {
  const snapshot = plan.snapshot;
  const prefix = ctx.paths.indexPrefix(plan.name);
  const mapUidValidity = ctx.map.uidValidity;
  const now = Math.floor(Date.now() / 1000);
  const wasBroken = snapshot !== undefined && snapshot.source !== "log" && (snapshot.source !== "none" || snapshot.error !== undefined);
  // What the last records built put back, reported once they are written (writeMailbox may build twice).
  let restored: RebuildResult["restored"] = [];
  const restore = (nextUid: number) => {
    const put = appendRecordsOfColumns(nextUid, plan.restore, { mapUids: placed.mapUids, guids: placed.found.guids }, now);
    restored = put.uids.map((uid, i) => ({ mailbox: plan.name, uid, mapUid: placed.mapUids[plan.restore[i]] }));
    return put;
  };
  const reportRestored = () => {
    for (let k = 0; k < restored.length; k++) result.restored.push(restored[k]);
  };

  if (!plan.recreate) {
    await writeMailbox(prefix, (state) => {
      const header = mdboxHeaderOf(state);
      const trust = oldMapUidValidity !== undefined && header?.mapUidValidity === oldMapUidValidity;
      const records: LogRecord[] = [];
      if (header === undefined || header.mapUidValidity !== mapUidValidity) {
        const guid = header !== undefined && header.mailboxGuid.some((b) => b !== 0) ? header.mailboxGuid : generateGuid128();
        records.push(...mdboxHeaderRecords({ mapUidValidity, mailboxGuid: guid, flags: header?.flags ?? 0 }));
      }
      const mdboxUpdates: Array<{ uid: number; mapUid: number; saveDate: number }> = [];
      const guidUpdates: Array<{ uid: number; guid128: Uint8Array }> = [];
      const expunges: Array<{ uid: number; guid: Uint8Array }> = [];
      for (const ref of messageRefs(state)) {
        const msg = index.match(ref, trust);
        if (msg < 0) {
          expunges.push({ uid: ref.uid, guid: ref.guid128 });
          result.droppedRecords.push({ mailbox: plan.name, uid: ref.uid });
          continue;
        }
        const mapUid = placed.mapUids[msg];
        if (ref.mapUid !== mapUid) mdboxUpdates.push({ uid: ref.uid, mapUid, saveDate: ref.saveDate || now });
        const guid128 = placed.found.guid128(msg);
        if (Buffer.compare(ref.guid128, guid128) !== 0) guidUpdates.push({ uid: ref.uid, guid128 });
      }
      records.push(...mdboxRecordRecords(mdboxUpdates), ...guidRecordRecords(guidUpdates));
      if (expunges.length > 0) records.push({ type: "expunge-guid", external: true, sync: false, expunges });
      records.push(...restore(state.header.nextUid).records);
      return records.length > 0 ? [records] : [];
    }, { fsync: ctx.settings.fsync, closedIndexes: closed });
    reportRestored();
    return;
  }

  if (plan.restore.length === 0 && plan.kept.length === 0 && !wasBroken) return;
  // A mailbox messages are put back into may not exist yet: its mail directory says it does.
  ctx.paths.makeMailboxDirs(plan.name);
  // The backup stays: it is what the next rebuild would fall back to.
  for (const suffix of ["", ".log", ".log.2", ".cache"]) fs.rmSync(prefix + suffix, { force: true });
  const oldHeader = snapshot?.header;
  const mailboxGuid = oldHeader !== undefined && oldHeader.mailboxGuid.some((b) => b !== 0) ? oldHeader.mailboxGuid : generateGuid128();
  const uidValidity = await opts.newUidValidity();
  const created = (nextUid: number): CreatedTransactions => {
    const kept = [...plan.kept].sort((a, b) => a.ref.uid - b.ref.uid).map(({ ref, msg }) => ({
      uid: ref.uid, flags: ref.flags, keywords: ref.keywords, mapUid: placed.mapUids[msg], guid128: placed.found.guid128(msg), saveDate: ref.saveDate || now,
    }));
    const first = appendRecords(nextUid, kept);
    const next = first.uids.length > 0 ? first.uids[first.uids.length - 1] + 1 : nextUid;
    const put = restore(next);
    const records = [...first.records, ...put.records];
    return { transactions: records.length > 0 ? [records] : [] };
  };
  await writeMailbox(prefix, (state) => created(state.header.nextUid).transactions, {
    fsync: ctx.settings.fsync,
    closedIndexes: closed,
    initialRecords: () => initialMailboxRecords({ mapUidValidity, mailboxGuid, flags: 0 }, uidValidity),
    // The log is new (removed above): it is written with the records in it.
    createWith: created,
  });
  reportRestored();
  result.recreatedMailboxes.push({ mailbox: plan.name, from: snapshot?.source === "index" || snapshot?.source === "backup" ? snapshot.source : "none" });
}
