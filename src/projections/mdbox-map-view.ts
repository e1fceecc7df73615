/**
 * Reading the mdbox map out of an index map state (the projection of
 * storage/dovecot.map.index + its log): map_uid → {file_id, offset, size}
 * and refcount. Pure functions, no I/O.
 */
import { extension, extensionHeader } from "./read.js";
import type { ExtensionInfo, IndexMapState } from "./state.js";
import { decodeMapHeader, decodeMapRecord, decodeRefcount, mapRecordEnd, mapRecordFileId, MAP_EXT_NAME, REF_EXT_NAME, type MapHeader, type MapRecord } from "./mdbox-map-format.js";

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
  const map = extension(state, MAP_EXT_NAME);
  if (map === undefined || map.recordSize < 12) return () => undefined;
  const ref = extension(state, REF_EXT_NAME);
  return (mapUid) => {
    const index = state.records.indexOfUid(mapUid);
    return index < 0 ? undefined : entryAt(state, index, map, ref);
  };
}

/**
 * A reader of map uids' refcounts (undefined when the map has no placed
 * record of it, as lookupMapEntry), the extensions looked up once and the
 * row read in place: an expunge of many messages asks per message.
 */
export function refcountReader(state: IndexMapState): (mapUid: number) => number | undefined {
  const map = extension(state, MAP_EXT_NAME);
  const ref = extension(state, REF_EXT_NAME);
  return (mapUid) => {
    if (map === undefined || map.recordSize < 12) return undefined;
    const index = state.records.indexOfUid(mapUid);
    if (index < 0) return undefined;
    const row = state.records.row(index);
    const at = row.offset + map.recordOffset;
    // file_id 0: never placed.
    if ((row.bytes[at] | row.bytes[at + 1] | row.bytes[at + 2] | row.bytes[at + 3]) === 0) return undefined;
    return refcountIn(row, ref);
  };
}

/** The refcount of a map row (0 when the map has no `ref` extension yet). */
function refcountIn(row: { bytes: Uint8Array; offset: number }, ref: ExtensionInfo | undefined): number {
  return ref === undefined || ref.recordSize < 2 ? 0 : decodeRefcount(row.bytes.subarray(row.offset + ref.recordOffset));
}

/**
 * Every placed map record, in map-uid order. Reads the rows in place, so the
 * cost is one small object per record.
 */
export function mapEntries(state: IndexMapState): MapEntry[] {
  const map = extension(state, MAP_EXT_NAME);
  if (map === undefined || map.recordSize < 12) return [];
  const ref = extension(state, REF_EXT_NAME);
  const out: MapEntry[] = [];
  for (let i = 0; i < state.records.count; i++) {
    const entry = entryAt(state, i, map, ref);
    if (entry !== undefined) out.push(entry);
  }
  return out;
}

/**
 * Calls `fn` with the map uid and refcount of every placed record, in map
 * uid order, reading the rows in place: for passes over the whole map that
 * would otherwise look up each map uid (a rebuild's refcount passes).
 */
export function forEachRefcount(state: IndexMapState, fn: (mapUid: number, refcount: number) => void): void {
  const map = extension(state, MAP_EXT_NAME);
  if (map === undefined || map.recordSize < 12) return;
  const ref = extension(state, REF_EXT_NAME);
  const refAt = ref === undefined || ref.recordSize < 2 ? -1 : ref.recordOffset;
  const rs = state.records.recordSize;
  state.records.forEachChunk((rows) => {
    for (let o = 0; o < rows.length; o += rs) {
      const at = o + map.recordOffset;
      // file_id 0: never placed, as entryAt says.
      if ((rows[at] | rows[at + 1] | rows[at + 2] | rows[at + 3]) === 0) continue;
      const mapUid = (rows[o] | (rows[o + 1] << 8) | (rows[o + 2] << 16) | (rows[o + 3] << 24)) >>> 0;
      fn(mapUid, refAt < 0 ? 0 : rows[o + refAt] | (rows[o + refAt + 1] << 8));
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
 * where a save may append. A save asks once per commit, so this is one pass
 * over the rows read in place, with an entry per file, not per record:
 * walking the rows through entry objects (twice) made an import of 100,000
 * messages allocate 3.7 GB here, O(messages²), most of its garbage.
 */
export function recentFileEnds(state: IndexMapState, max: number): FileEnd[] {
  const map = extension(state, MAP_EXT_NAME);
  if (map === undefined || map.recordSize < 12) return [];
  /** Per file: its last row (the newest map uid in it) and its end. */
  const files = new Map<number, { last: number; end: number }>();
  const stride = state.records.recordSize;
  let index = 0;
  let fileId = 0;
  let file = { last: 0, end: 0 };
  state.records.forEachChunk((rows) => {
    for (let at = map.recordOffset; at < rows.length; at += stride, index++) {
      const id = mapRecordFileId(rows, at);
      if (id === 0) continue;
      // Consecutive rows mostly share a file: look it up only when the file changes.
      if (id !== fileId) {
        fileId = id;
        file = files.get(id) ?? { last: 0, end: 0 };
        files.set(id, file);
      }
      file.last = index;
      file.end = Math.max(file.end, mapRecordEnd(rows, at));
    }
  });
  return [...files]
    .sort((a, b) => b[1].last - a[1].last)
    .slice(0, max)
    .map(([id, f]) => ({ fileId: id, end: f.end }));
}

/** The entry in row `index`, read in place (no MessageRecord); undefined when never placed (file_id 0). */
function entryAt(state: IndexMapState, index: number, map: ExtensionInfo, ref: ExtensionInfo | undefined): MapEntry | undefined {
  const row = state.records.row(index);
  const at = row.offset + map.recordOffset;
  const placed = decodeMapRecord(row.bytes.subarray(at, at + 12));
  if (placed === undefined) return undefined;
  return {
    mapUid: row.words[row.offset >>> 2],
    fileId: placed.fileId,
    offset: placed.offset,
    size: placed.size,
    refcount: refcountIn(row, ref),
  };
}

/** @returns the `map` extension header (zeros when the map has none yet). */
export function mapHeader(state: IndexMapState): MapHeader {
  const ext = extension(state, MAP_EXT_NAME);
  return ext === undefined ? { highestFileId: 0, rebuildCount: 0 } : decodeMapHeader(extensionHeader(ext));
}

/** Entries grouped by file id, each group sorted by offset. */
export function entriesByFile(entries: readonly MapEntry[]): Map<number, MapEntry[]> {
  const byFile = new Map<number, MapEntry[]>();
  for (const e of entries) {
    const list = byFile.get(e.fileId);
    if (list) list.push(e);
    else byFile.set(e.fileId, [e]);
  }
  for (const list of byFile.values()) list.sort((a, b) => a.offset - b.offset);
  return byFile;
}
