/**
 * Reading the mdbox map out of an index map state (the projection of
 * storage/dovecot.map.index + its log): map_uid → {file_id, offset, size}
 * and refcount. Pure functions, no I/O.
 */
import { extension, extensionHeader } from "./read.js";
import type { ExtensionInfo, IndexMapState } from "./state.js";
import { decodeMapHeader, MAP_EXT_NAME, REF_EXT_NAME, type MapHeader, type MapRecord } from "./mdbox-map-format.js";

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

/** A file of the map and where its last message ends. */
export interface FileEnd {
  readonly fileId: number;
  readonly end: number;
}

/**
 * The last `max` distinct files of the map, newest map uid first, each with
 * the end of its last message (the most offset + size of its records):
 * where a save may append. Reads the rows in place: a save asks once per
 * commit, and a MapEntry per record of a large map each time cost an
 * import O(messages²) allocations.
 */
export function recentFileEnds(state: IndexMapState, max: number): FileEnd[] {
  const map = extension(state, MAP_EXT_NAME);
  if (map === undefined || map.recordSize < 12) return [];
  const fileAt = (i: number) => {
    const row = state.records.row(i);
    return new DataView(row.bytes.buffer, row.bytes.byteOffset + row.offset + map.recordOffset, 12);
  };
  const ends = new Map<number, number>();
  for (let i = state.records.count - 1; i >= 0 && ends.size < max; i--) {
    const fileId = fileAt(i).getUint32(0, true);
    if (fileId !== 0 && !ends.has(fileId)) ends.set(fileId, 0);
  }
  for (let i = 0; i < state.records.count; i++) {
    const view = fileAt(i);
    const end = ends.get(view.getUint32(0, true));
    if (end !== undefined) ends.set(view.getUint32(0, true), Math.max(end, view.getUint32(4, true) + view.getUint32(8, true)));
  }
  return [...ends].map(([fileId, end]) => ({ fileId, end }));
}

/** The entry in row `index`, read in place (no MessageRecord); undefined when never placed (file_id 0). */
function entryAt(state: IndexMapState, index: number, map: ExtensionInfo, ref: ExtensionInfo | undefined): MapEntry | undefined {
  const row = state.records.row(index);
  const view = new DataView(row.bytes.buffer, row.bytes.byteOffset + row.offset);
  const fileId = view.getUint32(map.recordOffset, true);
  if (fileId === 0) return undefined;
  return {
    mapUid: row.words[row.offset >>> 2],
    fileId,
    offset: view.getUint32(map.recordOffset + 4, true),
    size: view.getUint32(map.recordOffset + 8, true),
    refcount: ref === undefined || ref.recordSize < 2 ? 0 : view.getUint16(ref.recordOffset, true),
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
