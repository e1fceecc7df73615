/**
 * Saving into an mdbox storage, the map half (mdbox-save.c): message data is
 * appended to m.N files and synced first, then one map transaction gives
 * the new messages map uids (APPEND + `map` record + `ref` = 1) and raises
 * the refcount of copied ones (EXT_ATOMIC_INC +1). The caller writes the
 * mailbox records afterwards; a crash in between leaks a refcount (the
 * message stays until a rebuild recounts), never loses data.
 */
import type { ExtAtomicInc, LogRecord } from "../../log/types.js";
import type { IndexMapState } from "../../projections/state.js";
import { buildDboxMetadata } from "../dbox/metadata.js";
import { virtualSizeOf } from "../dbox/message-body.js";
import { AppendSession, type Placement } from "./append-session.js";
import type { MdboxContext } from "./context.js";
import type { MdboxMap } from "./map.js";
import { RefcountOverflowError } from "./errors.js";
import { highestFileIdRecords, mapRecordRecords, REFCOUNT_MAX, refIncRecords, refIncRecordsOf, refSetRecords } from "../../projections/mdbox-map-format.js";
import { lookupMapEntry, mapHeader, refcountsOf } from "../../projections/mdbox-map-view.js";
import { AssertionFailure } from "../../shared/errors.js";

/**
 * One message to store: new data, data already placed in a session's files
 * (MdboxSaveStage), or a copy of an existing map record.
 */
export type SaveItem =
  | { readonly kind: "new"; readonly body: Uint8Array; readonly guid: string; readonly receivedTime: number }
  | { readonly kind: "placed"; readonly placement: Placement; readonly guid: string }
  | { readonly kind: "copy"; readonly mapUid: number; readonly fallback: { body: Uint8Array; guid: string; receivedTime: number } };

/** Options of saveToMap(). */
export interface SaveOptions {
  /** Metadata `B`: the mailbox's storage name. */
  readonly origMailbox: string;
  /** The caller holds a mailbox lock (see MdboxMap). */
  readonly nested: boolean;
  /**
   * The session the `placed` items were written in (MdboxSaveStage's): new
   * items go there too, and its owner releases it (saveToMap then releases
   * only a session of its own). Default: a session of its own.
   */
  readonly session?: AppendSession;
}

/** A session that saves messages into the storage's m.N files. */
export function newSaveSession(ctx: MdboxContext): AppendSession {
  return new AppendSession(ctx.paths, { rotateSizeBytes: ctx.settings.rotateSizeBytes, sync: ctx.settings.fsyncFiles ?? true });
}

/** Writes one new message into `session`'s files (encoded straight into its staging buffer). */
export function placeMessage(session: AppendSession, map: MdboxMap, m: { body: Uint8Array; guid: string; receivedTime: number }, origMailbox: string): Placement {
  const metadata = buildDboxMetadata({ guid: m.guid, receivedTime: m.receivedTime, virtualSize: virtualSizeOf(m.body), origMailbox });
  return session.addMessage({ body: m.body, metadata }, () => map.recentFiles());
}

/**
 * Stores `items` and commits the map transaction.
 * @returns the map uid of each item, in order.
 * @throws RefcountOverflowError when a copy would pass REFCOUNT_MAX (nothing
 *   is written then); LockTimeoutError; fs errors (written data is taken
 *   back, unless the session is the caller's).
 */
export async function saveToMap(ctx: MdboxContext, items: readonly SaveItem[], opts: SaveOptions): Promise<number[]> {
  const map = ctx.map.open();
  const work = [...items];
  const session = opts.session ?? newSaveSession(ctx);
  // Where each new or placed item's data is; kept across attempts, so a retry writes only what became new.
  const placements = new Map<number, Placement>();
  try {
    // A copy whose source was purged meanwhile becomes a new save; at most once per item.
    for (let attempt = 0; attempt < 3; attempt++) {
      for (let i = 0; i < work.length; i++) {
        const w = work[i];
        if (w.kind === "placed") placements.set(i, w.placement);
        else if (w.kind === "new" && !placements.has(i)) placements.set(i, placeMessage(session, map, w, opts.origMailbox));
      }
      await session.flush();
      const mapUids: number[] = new Array(work.length).fill(0);
      let vanished: number[] = [];
      await map.transact(async (state) => {
        vanished = work.flatMap((w, i) => (w.kind === "copy" && lookupMapEntry(state, w.mapUid) === undefined ? [i] : []));
        if (vanished.length > 0) return [];
        return [await mapRecordsFor(state, work, placements, session, mapUids)];
      }, { nested: opts.nested });
      if (vanished.length === 0) {
        session.markCommitted();
        return mapUids;
      }
      for (const i of vanished) {
        const w = work[i];
        if (w.kind === "copy") work[i] = { kind: "new", ...w.fallback };
      }
    }
  } finally {
    if (opts.session === undefined) await session.release();
  }
  throw new AssertionFailure("copy sources kept vanishing");
}

/** Builds the map transaction (under the map lock): names new files, assigns map uids, sets/raises refcounts. */
async function mapRecordsFor(
  state: IndexMapState,
  work: readonly SaveItem[],
  placements: ReadonlyMap<number, Placement>,
  session: AppendSession,
  mapUids: number[],
): Promise<LogRecord[]> {
  // Check refcounts before naming any file, so a refused copy writes nothing.
  const incs = new Map<number, number>();
  for (const w of work) if (w.kind === "copy") incs.set(w.mapUid, (incs.get(w.mapUid) ?? 0) + 1);
  for (const [mapUid, diff] of incs) {
    const refcount = lookupMapEntry(state, mapUid)!.refcount;
    if (refcount + diff > REFCOUNT_MAX) {
      throw new RefcountOverflowError(`message has been copied too many times (map uid ${mapUid}: ${refcount} + ${diff} > ${REFCOUNT_MAX})`, mapUid, refcount);
    }
  }
  const flags = { external: false };
  const records: LogRecord[] = [];
  const highest = mapHeader(state).highestFileId;
  const newHighest = await session.publish(highest);
  // Observed order: the highest_file_id header update comes before the APPEND.
  if (newHighest !== highest) records.push(...highestFileIdRecords(newHighest, flags));
  let next = state.header.nextUid;
  const placed: Array<{ mapUid: number; fileId: number; offset: number; size: number }> = [];
  work.forEach((w, i) => {
    if (w.kind === "copy") {
      mapUids[i] = w.mapUid;
    } else {
      mapUids[i] = next++;
      placed.push({ mapUid: mapUids[i], ...session.resolve(placements.get(i)!) });
    }
  });
  if (placed.length > 0) {
    records.push({ type: "append", external: false, sync: false, messages: placed.map((p) => ({ uid: p.mapUid, flags: 0 })) });
    records.push(...mapRecordRecords(placed, flags));
    records.push(...refSetRecords(placed.map((p) => ({ mapUid: p.mapUid, refcount: 1 })), flags));
  }
  records.push(...refIncRecords([...incs].map(([mapUid, diff]) => ({ mapUid, diff })), flags));
  return records;
}

/**
 * Lowers the refcounts of `mapUids` by one per occurrence, never below zero
 * (an inc below zero is corruption to Dovecot).
 * @returns the map uids whose refcount reached zero.
 */
export async function releaseMapUids(ctx: MdboxContext, mapUids: readonly number[], opts: { nested: boolean }): Promise<number[]> {
  // Sorted, so that repeats of a map uid sit together and the map is read and written
  // in uid order, as Dovecot's transaction sorts its atomic incs by sequence (issue #11:
  // a Map of counts built per message before).
  const sorted = Uint32Array.from(mapUids).sort();
  const zero: number[] = [];
  await ctx.map.open().transact(async (state) => {
    zero.length = 0;
    const updates: ExtAtomicInc[] = [];
    const refcounts = refcountsOf(state, sorted);
    for (let i = 0; i < sorted.length; ) {
      const mapUid = sorted[i];
      const refcount = refcounts[i];
      let n = 1;
      while (i + n < sorted.length && sorted[i + n] === mapUid) n++;
      i += n;
      // -1: no such map record (or never placed).
      if (refcount <= 0) continue;
      const dec = Math.min(n, refcount);
      if (dec === refcount) zero.push(mapUid);
      updates.push({ uid: mapUid, diff: -dec });
    }
    const records = refIncRecordsOf(updates, { external: false });
    return records.length > 0 ? [records] : [];
  }, opts);
  return zero;
}
