/**
 * Reading the mdbox map out of an index map state (the projection of
 * storage/dovecot.map.index + its log): map_uid → {file_id, offset, size}
 * and refcount. Pure functions, no I/O.
 */
import { extension, extensionHeader } from "./read.js";
import type { ExtensionInfo, IndexMapState } from "./state.js";
import { decodeMapHeader, decodeRefcount, MAP_EXT_NAME, readMapRecordInto, REF_EXT_NAME, type MapHeader, type MapRecord } from "./mdbox-map-format.js";

/** One map record: where a stored message lives and how many mailbox records use it. */
export interface MapEntry extends MapRecord {
  readonly mapUid: number;
  readonly refcount: number;
}

/** @returns the entry of `mapUid`, or undefined when the map has no such record (or it was never placed). */
export function lookupMapEntry(state: IndexMapState, mapUid: number): MapEntry | undefined {
  const map = extension(state, MAP_EXT_NAME);
  if (map === undefined || map.recordSize < 12) return undefined;
  const index = state.records.indexOfUid(mapUid);
  return index < 0 ? undefined : entryAt(state, index, map, extension(state, REF_EXT_NAME));
}

/** Every placed map record, in map-uid order: one object per record. */
export function mapEntries(state: IndexMapState): MapEntry[] {
  const out: MapEntry[] = [];
  forEachMapRow(state, (row) => out.push({ ...row }));
  return out;
}

/** The placed records of each of `fileIds` that has any, in offset order: one walk of the map, objects only for those files' records. */
export function mapEntriesOfFiles(state: IndexMapState, fileIds: ReadonlySet<number>): Map<number, MapEntry[]> {
  const byFile = new Map<number, MapEntry[]>();
  forEachMapRow(state, (row) => {
    if (!fileIds.has(row.fileId)) return;
    const list = byFile.get(row.fileId);
    if (list === undefined) byFile.set(row.fileId, [{ ...row }]);
    else list.push({ ...row });
  });
  for (const list of byFile.values()) list.sort((a, b) => a.offset - b.offset);
  return byFile;
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
  const refOffset = ref === undefined || ref.recordSize < 2 ? -1 : ref.recordOffset;
  const recordSize = state.records.recordSize;
  const row: MapRow = { mapUid: 0, fileId: 0, offset: 0, size: 0, refcount: 0 };
  state.records.forEachChunk((rows, words) => {
    for (let at = 0; at < rows.length; at += recordSize) {
      if (!readMapRecordInto(rows, at + map.recordOffset, row)) continue;
      row.mapUid = words[at >>> 2];
      row.refcount = refOffset < 0 ? 0 : decodeRefcount(rows, at + refOffset);
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
 * entry per file: a save asks once per commit and a purge once per file,
 * and building a list of the map's entries each time made an import
 * O(messages²) in retained objects.
 */
export function recentFileEnds(state: IndexMapState, max: number): FileEnd[] {
  const files = new Map<number, { lastMapUid: number; end: number }>();
  forEachMapRow(state, (e) => {
    const f = files.get(e.fileId);
    // Rows come in map-uid order, so the last row seen of a file has its newest map uid.
    if (f === undefined) files.set(e.fileId, { lastMapUid: e.mapUid, end: e.offset + e.size });
    else {
      f.lastMapUid = e.mapUid;
      f.end = Math.max(f.end, e.offset + e.size);
    }
  });
  return [...files]
    .sort((a, b) => b[1].lastMapUid - a[1].lastMapUid)
    .slice(0, max)
    .map(([fileId, f]) => ({ fileId, end: f.end }));
}

/** The entry in row `index`, read in place (no MessageRecord); undefined when never placed (file_id 0). */
function entryAt(state: IndexMapState, index: number, map: ExtensionInfo, ref: ExtensionInfo | undefined): MapEntry | undefined {
  const row = state.records.row(index);
  const placed = { fileId: 0, offset: 0, size: 0 };
  if (!readMapRecordInto(row.bytes, row.offset + map.recordOffset, placed)) return undefined;
  const refAt = ref === undefined || ref.recordSize < 2 ? -1 : row.offset + ref.recordOffset;
  return {
    mapUid: row.words[row.offset >>> 2],
    ...placed,
    refcount: refAt < 0 ? 0 : decodeRefcount(row.bytes, refAt),
  };
}

/** @returns the `map` extension header (zeros when the map has none yet). */
export function mapHeader(state: IndexMapState): MapHeader {
  const ext = extension(state, MAP_EXT_NAME);
  return ext === undefined ? { highestFileId: 0, rebuildCount: 0 } : decodeMapHeader(extensionHeader(ext));
}
