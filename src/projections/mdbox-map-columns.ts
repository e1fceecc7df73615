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
import { FileEndsTracker, forEachMapRow, type FileEnd, type MapEntry } from "./mdbox-map-view.js";

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

  /** The columns of `state`'s placed records (one walk of the map). */
  static of(state: IndexMapState): MapColumns {
    const max = state.records.count;
    const mapUids = new Uint32Array(max);
    const fileIds = new Uint32Array(max);
    const offsets = new Uint32Array(max);
    const sizes = new Uint32Array(max);
    const refcounts = new Uint16Array(max);
    const files = new FileEndsTracker();
    let n = 0;
    forEachMapRow(state, (row) => {
      mapUids[n] = row.mapUid;
      fileIds[n] = row.fileId;
      offsets[n] = row.offset;
      sizes[n] = row.size;
      refcounts[n] = row.refcount;
      files.add(row.fileId, row.mapUid, row.offset + row.size);
      n++;
    });
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
    const lists = new Map<number, number[]>();
    // Records come grouped by file mostly (saves append in map-uid order): a lookup per change of file.
    let lastFileId = -1;
    let list: number[] | undefined;
    for (let i = 0; i < this.count; i++) {
      const fileId = this.fileIds[i];
      if (fileId !== lastFileId) {
        lastFileId = fileId;
        list = fileIds.has(fileId) ? lists.get(fileId) : undefined;
        if (list === undefined && fileIds.has(fileId)) lists.set(fileId, (list = []));
      }
      list?.push(i);
    }
    const byFile = new Map<number, Uint32Array>();
    for (const [fileId, rows] of lists) byFile.set(fileId, this.inOffsetOrder(Uint32Array.from(rows)));
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
