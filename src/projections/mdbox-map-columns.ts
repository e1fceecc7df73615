/**
 * Every placed record of one map state, column by column: what a purge
 * reads of the map (its refcount-0 records, the records of the files it
 * rewrites, the files new copies may go to, the files in use), gathered in
 * one walk. Each
 * pass is then a plain loop over typed arrays instead of a walk of the
 * map calling back per row: a purge runs once, with cold code, where a
 * few walks of 20,000 rows through closures were a tenth of its CPU.
 */
import type { IndexMapState } from "./state.js";
import { FileEndsTracker, type FileEnd, type MapEntry } from "./mdbox-map-view.js";
import { IndexCorruptedError, type ErrorLocation } from "../shared/errors.js";
import { extension } from "./read.js";
import { MAP_EXT_NAME, REF_EXT_NAME } from "./mdbox-map-format.js";

/** Column i of each array is the i-th placed record, in map-uid order. */
export class MapColumns {
  private constructor(
    readonly state: IndexMapState,
    readonly count: number,
    readonly mapUids: Uint32Array,
    readonly fileIds: Uint32Array,
    readonly offsets: Uint32Array,
    readonly sizes: Uint32Array,
    readonly refcounts: Uint16Array,
    /** The files of the records, fed in the same walk. */
    private readonly files: FileEndsTracker,
  ) {}

  /**
   * The columns of `state`'s placed records (one walk of the map).
   * @param where the map index the state is of, for the error.
   * @throws IndexCorruptedError when the map records are not 4-byte aligned.
   */
  static of(state: IndexMapState, where: ErrorLocation): MapColumns {
    const max = state.records.count;
    const mapUids = new Uint32Array(max);
    const fileIds = new Uint32Array(max);
    const offsets = new Uint32Array(max);
    const sizes = new Uint32Array(max);
    const refcounts = new Uint16Array(max);
    const files = new FileEndsTracker();
    let n = 0;
    const map = extension(state, MAP_EXT_NAME);
    // As forEachMapRow: without a whole map record, no record is placed.
    if (map !== undefined && map.recordSize >= 12) {
      // Dovecot and this engine both introduce the map with 4-byte alignment; only a foreign log
      // could place it otherwise, and reading it byte by byte too would be a second decoder.
      if (map.recordOffset % 4 !== 0 || state.records.recordSize % 4 !== 0) {
        throw new IndexCorruptedError(`map records not 4-byte aligned (offset ${map.recordOffset} in ${state.records.recordSize}-byte records)`, where);
      }
      // The map record's three u32s read as words, in place: no call per row (a purge's cold
      // walk of 20,000 rows through forEachMapRow's callbacks took milliseconds).
      const ref = extension(state, REF_EXT_NAME);
      const refAt = ref !== undefined && ref.recordSize >= 2 ? ref.recordOffset : -1;
      const stride = state.records.recordSize >>> 2;
      const mapWord = map.recordOffset >>> 2;
      state.records.forEachChunk((rows, words) => {
        const end = rows.length >>> 2;
        for (let w = 0, at = 0; w < end; w += stride, at += stride << 2) {
          const fileId = words[w + mapWord];
          if (fileId === 0) continue;
          const mapUid = words[w];
          const offset = words[w + mapWord + 1];
          const size = words[w + mapWord + 2];
          mapUids[n] = mapUid;
          fileIds[n] = fileId;
          offsets[n] = offset;
          sizes[n] = size;
          refcounts[n] = refAt < 0 ? 0 : rows[at + refAt] | (rows[at + refAt + 1] << 8);
          files.add(fileId, mapUid, offset + size);
          n++;
        }
      });
    }
    return new MapColumns(state, n, mapUids, fileIds, offsets, sizes, refcounts, files);
  }

  /** The record in column `i`, as an object of its own. */
  entry(i: number): MapEntry {
    return { mapUid: this.mapUids[i], fileId: this.fileIds[i], offset: this.offsets[i], size: this.sizes[i], refcount: this.refcounts[i] };
  }

  /**
   * For each of `fileIds` that has records, the columns of its records in
   * offset order: indexes rather than an object per record (a purge lists
   * every record of the files it rewrites, and reads each once).
   */
  rowsOfFiles(fileIds: ReadonlySet<number>): Map<number, Uint32Array> {
    // One walk of the columns for the runs of each file (records come grouped by file mostly:
    // saves append in map-uid order), then the rows filled in from the runs, without an
    // array grown per row.
    const runs = new Map<number, number[]>();
    const columnFileIds = this.fileIds;
    let from = 0;
    for (let i = 1; i <= this.count; i++) {
      if (i < this.count && columnFileIds[i] === columnFileIds[from]) continue;
      const fileId = columnFileIds[from];
      if (fileIds.has(fileId)) {
        const list = runs.get(fileId);
        if (list === undefined) runs.set(fileId, [from, i]);
        else list.push(from, i);
      }
      from = i;
    }
    const byFile = new Map<number, Uint32Array>();
    for (const [fileId, list] of runs) {
      let count = 0;
      for (let r = 0; r < list.length; r += 2) count += list[r + 1] - list[r];
      const rows = new Uint32Array(count);
      let at = 0;
      for (let r = 0; r < list.length; r += 2) for (let i = list[r]; i < list[r + 1]; i++) rows[at++] = i;
      byFile.set(fileId, this.inOffsetOrder(rows));
    }
    return byFile;
  }

  /** `rows` sorted by offset (a purge's copies put old map uids after newer ones), in place. */
  private inOffsetOrder(rows: Uint32Array): Uint32Array {
    const offsets = this.offsets;
    for (let k = 1; k < rows.length; k++) {
      if (offsets[rows[k]] < offsets[rows[k - 1]]) return rows.sort((a, b) => offsets[a] - offsets[b]);
    }
    return rows;
  }

  /** The files the records point at. */
  fileIdsInUse(): Set<number> {
    return this.files.inUse();
  }

  /** recentFileEnds() of the state. */
  recentFileEnds(max: number): FileEnd[] {
    return this.files.newest(max);
  }
}
