/**
 * Every placed record of one map state, column by column: what a purge
 * reads of the map (its refcount-0 records, the records of the files it
 * rewrites, the files new copies may go to), gathered in one walk. Each
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
  ) {}

  /** The columns of `state`'s placed records (one walk of the map). */
  static of(state: IndexMapState): MapColumns {
    const max = state.records.count;
    const mapUids = new Uint32Array(max);
    const fileIds = new Uint32Array(max);
    const offsets = new Uint32Array(max);
    const sizes = new Uint32Array(max);
    const refcounts = new Uint16Array(max);
    let n = 0;
    forEachMapRow(state, (row) => {
      mapUids[n] = row.mapUid;
      fileIds[n] = row.fileId;
      offsets[n] = row.offset;
      sizes[n] = row.size;
      refcounts[n] = row.refcount;
      n++;
    });
    return new MapColumns(state, n, mapUids, fileIds, offsets, sizes, refcounts);
  }

  /** The record in column `i`, as an object of its own. */
  entry(i: number): MapEntry {
    return { mapUid: this.mapUids[i], fileId: this.fileIds[i], offset: this.offsets[i], size: this.sizes[i], refcount: this.refcounts[i] };
  }

  /** The records of each of `fileIds` that has any, in offset order: objects only for those files' records. */
  entriesOfFiles(fileIds: ReadonlySet<number>): Map<number, MapEntry[]> {
    const byFile = new Map<number, MapEntry[]>();
    for (let i = 0; i < this.count; i++) {
      const fileId = this.fileIds[i];
      if (!fileIds.has(fileId)) continue;
      const list = byFile.get(fileId);
      if (list === undefined) byFile.set(fileId, [this.entry(i)]);
      else list.push(this.entry(i));
    }
    for (const list of byFile.values()) list.sort((a, b) => a.offset - b.offset);
    return byFile;
  }

  /** The files the records point at. */
  fileIdsInUse(): Set<number> {
    const used = new Set<number>();
    // Records come grouped by file mostly (saves append in map-uid order): a Set add per change of file.
    let last = -1;
    for (let i = 0; i < this.count; i++) {
      if (this.fileIds[i] === last) continue;
      last = this.fileIds[i];
      used.add(last);
    }
    return used;
  }

  /** recentFileEnds() of the state, from the columns. */
  recentFileEnds(max: number): FileEnd[] {
    const files = new FileEndsTracker();
    for (let i = 0; i < this.count; i++) files.add(this.fileIds[i], this.mapUids[i], this.offsets[i] + this.sizes[i]);
    return files.newest(max);
  }
}
