/**
 * The map records of the files one purge rewrites, read in one walk of the
 * map and reused file after file while nobody else changes the map. Reading
 * each file's records afresh walked the whole map once per file, which made
 * a purge O(files × messages) (issue #11: most of its CPU at 100k).
 */
import type { IndexMapState } from "../../projections/state.js";
import { mapEntriesOfFiles, type MapEntry } from "../../projections/mdbox-map-view.js";
import type { MdboxMap } from "./map.js";

/** The records of the files being purged, as of one map state. */
export class PurgeListing {
  private state: IndexMapState | undefined;
  private byFile = new Map<number, MapEntry[]>();

  constructor(private readonly map: MdboxMap, private readonly fileIds: ReadonlySet<number>) {}

  /**
   * The records of `fileId` in offset order as the map has them now, and the
   * state they were read from. Call holding the file's flock, so that no
   * save can add to the file afterwards. Walks the map again only when it
   * changed since the last listing other than by afterOwnCommit().
   */
  entriesOf(fileId: number): { readonly state: IndexMapState; readonly entries: readonly MapEntry[] } {
    const state = this.map.refresh();
    if (state !== this.state) {
      this.state = state;
      this.byFile = mapEntriesOfFiles(state, this.fileIds);
    }
    return { state, entries: this.byFile.get(fileId) ?? [] };
  }

  /**
   * The purge's map transaction for a batch of files committed on top of
   * the listed state itself (nothing else was folded first): `state`
   * differs from it only in those files' records (moved to files outside
   * the purge, or expunged) and the header, so the other files' lists
   * still hold.
   */
  afterOwnCommit(state: IndexMapState): void {
    this.state = state;
  }
}
