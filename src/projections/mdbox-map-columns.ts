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
    return this.files.inUse();
  }

  /** recentFileEnds() of the state. */
  recentFileEnds(max: number): FileEnd[] {
    return this.files.newest(max);
  }
}
