/**
 * Reading the mdbox map out of an index map state (the projection of
 * storage/dovecot.map.index + its log): map_uid → {file_id, offset, size}
 * and refcount. Pure functions, no I/O.
 */
import { extension, extensionHeader } from "./read.js";
import type { ExtensionInfo, IndexMapState } from "./state.js";
import type { RowRef } from "./record-store.js";
import { decodeMapHeader, decodeRefcount, MAP_EXT_NAME, mapRecordFileId, readMapRecordInto, REF_EXT_NAME, type MapHeader, type MapRecord } from "./mdbox-map-format.js";

/** One map record: where a stored message lives and how many mailbox records use it. */
export interface MapEntry extends MapRecord {
  readonly mapUid: number;
  readonly refcount: number;
}

/** @returns the entry of `mapUid`, or undefined when the map has no such record (or it was never placed). */
export function lookupMapEntry(state: IndexMapState, mapUid: number): MapEntry | undefined {
  return mapEntryReader(state)(mapUid);
}

/** lookupMapEntry for many map uids of one state: the extensions are looked up once (a fetch asks per message). */
export function mapEntryReader(state: IndexMapState): (mapUid: number) => MapEntry | undefined {
  return placedRowReader(state, (row, map, ref) => {
    // One object per lookup, filled in place (a fetch looks up every message).
    const entry = { mapUid: row.words[row.offset >>> 2], fileId: 0, offset: 0, size: 0, refcount: refcountIn(row.bytes, row.offset, ref) };
    readMapRecordInto(row.bytes, row.offset + map.recordOffset, entry);
    return entry;
  });
}

/**
 * The refcount of each of `mapUids` (ascending, repeats allowed), -1 where
 * the map has no such record or it was never placed (as lookupMapEntry's
 * undefined): read in place in one walk of the map's rows, without a search
 * or an object per map uid (issue #11: an expunge of many messages asks for
 * each of them).
 */
export function refcountsOf(state: IndexMapState, mapUids: ArrayLike<number>): Int32Array {
  const out = new Int32Array(mapUids.length).fill(-1);
  const map = extension(state, MAP_EXT_NAME);
  if (map === undefined || map.recordSize < 12) return out;
  const ref = extension(state, REF_EXT_NAME);
  state.records.visitUids(mapUids, (bytes, _words, offset, k) => {
    if (mapRecordFileId(bytes, offset + map.recordOffset) !== 0) out[k] = refcountIn(bytes, offset, ref);
  });
  return out;
}

/**
 * `read` applied to the map row of a map uid, the extensions looked up
 * once; undefined when the map has no such record or it was never placed
 * (file_id 0).
 */
function placedRowReader<T>(state: IndexMapState, read: (row: RowRef, map: ExtensionInfo, ref: ExtensionInfo | undefined) => T): (mapUid: number) => T | undefined {
  const map = extension(state, MAP_EXT_NAME);
  if (map === undefined || map.recordSize < 12) return () => undefined;
  const ref = extension(state, REF_EXT_NAME);
  return (mapUid) => {
    const index = state.records.indexOfUid(mapUid);
    if (index < 0) return undefined;
    const row = state.records.row(index);
    return mapRecordFileId(row.bytes, row.offset + map.recordOffset) === 0 ? undefined : read(row, map, ref);
  };
}

/** The refcount of the map row at bytes[rowAt] (0 when the map has no `ref` extension yet). */
function refcountIn(bytes: Uint8Array, rowAt: number, ref: ExtensionInfo | undefined): number {
  return ref === undefined || ref.recordSize < 2 ? 0 : decodeRefcount(bytes, rowAt + ref.recordOffset);
}

/**
 * Calls `fn` with the map uid and refcount of every placed record, in map
 * uid order (forEachMapRow): for passes over the whole map that would
 * otherwise look up each map uid (a rebuild's refcount passes).
 */
export function forEachRefcount(state: IndexMapState, fn: (mapUid: number, refcount: number) => void): void {
  forEachMapRow(state, (row) => fn(row.mapUid, row.refcount));
}

/** Every placed map record, in map-uid order: one object per record. */
export function mapEntries(state: IndexMapState): MapEntry[] {
  const out: MapEntry[] = [];
  forEachMapRow(state, (row) => out.push({ ...row }));
  return out;
}

/** A map record as forEachMapRow passes it. */
export interface MapRow {
  mapUid: number;
  fileId: number;
  offset: number;
  size: number;
  refcount: number;
}

/**
 * Calls `visit` with every placed map record, in map-uid order. The rows are
 * read leaf by leaf in place into one MapRow, overwritten for each record
 * (copy what you keep): a purge walks the whole map a few times, and a
 * MapEntry per record and walk was most of its garbage (issue #11).
 */
export function forEachMapRow(state: IndexMapState, visit: (row: Readonly<MapRow>) => void): void {
  const map = extension(state, MAP_EXT_NAME);
  if (map === undefined || map.recordSize < 12) return;
  const ref = extension(state, REF_EXT_NAME);
  const recordSize = state.records.recordSize;
  const row: MapRow = { mapUid: 0, fileId: 0, offset: 0, size: 0, refcount: 0 };
  state.records.forEachChunk((rows, words) => {
    for (let at = 0; at < rows.length; at += recordSize) {
      if (!readMapRecordInto(rows, at + map.recordOffset, row)) continue;
      row.mapUid = words[at >>> 2];
      row.refcount = refcountIn(rows, at, ref);
      visit(row);
    }
  });
}

/** A file of the map and where its last message ends. */
export interface FileEnd {
  readonly fileId: number;
  readonly end: number;
}

/**
 * The last `max` distinct files of the map, newest map uid first, each with
 * the end of its last message (the most offset + size of its records):
 * where a save may append. One walk of the rows in place, keeping one
 * entry per file: a save asks once per commit and a purge once per batch,
 * and building a list of the map's entries each time made an import
 * O(messages²) in retained objects.
 */
export function recentFileEnds(state: IndexMapState, max: number): FileEnd[] {
  return fileEndsOf(state).newest(max);
}

/** The files of `state`'s placed records, with their newest map uids and ends (one walk of the rows). */
export function fileEndsOf(state: IndexMapState): FileEndsTracker {
  const files = new FileEndsTracker();
  forEachMapRow(state, (e) => files.add(e.fileId, e.mapUid, e.offset + e.size));
  return files;
}

/**
 * The files of map records seen in map-uid order, with the newest map uid
 * and the end of each. Arrays indexed by file id (small integers, bounded
 * by highest_file_id in a sound map) rather than a Map: a lookup and a
 * store per row was most of a walk.
 */
export class FileEndsTracker {
  private readonly lastMapUid: number[] = [];
  private readonly end: number[] = [];
  private readonly fileIds: number[] = [];

  /** A record of `fileId` ending at `end`; map uids come in ascending order. */
  add(fileId: number, mapUid: number, end: number): void {
    if (this.lastMapUid[fileId] === undefined) {
      this.fileIds.push(fileId);
      this.end[fileId] = end;
    } else if (end > this.end[fileId]) this.end[fileId] = end;
    this.lastMapUid[fileId] = mapUid;
  }

  /** Every file seen: the files the map's records point at. */
  inUse(): Set<number> {
    return new Set(this.fileIds);
  }

  /** The `max` files with the newest map uids, newest first. */
  newest(max: number): FileEnd[] {
    return [...this.fileIds]
      .sort((a, b) => this.lastMapUid[b] - this.lastMapUid[a])
      .slice(0, max)
      .map((fileId) => ({ fileId, end: this.end[fileId] }));
  }
}

/** @returns the `map` extension header (zeros when the map has none yet). */
export function mapHeader(state: IndexMapState): MapHeader {
  const ext = extension(state, MAP_EXT_NAME);
  return ext === undefined ? { highestFileId: 0, rebuildCount: 0 } : decodeMapHeader(extensionHeader(ext));
}
