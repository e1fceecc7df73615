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
