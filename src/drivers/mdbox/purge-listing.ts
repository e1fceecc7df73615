/**
 * What one purge reads of the map, from one walk of it reused file after
 * file while nobody else changes the map: the records of the files it
 * rewrites, and the files new copies may go to. Reading each file's
 * records afresh walked the whole map once per file, which made a purge
 * O(files × messages) (issue #11: most of its CPU at 100k).
 */
import type { IndexMapState } from "../../projections/state.js";
import type { FileEnd } from "../../projections/mdbox-map-view.js";
import { MapColumns } from "../../projections/mdbox-map-columns.js";
import { MAX_CANDIDATE_FILES } from "./append-session.js";
import type { MdboxMap } from "./map.js";

const NO_ROWS = new Uint32Array(0);

/** The records of the files being purged, as of one map state. */
export class PurgeListing {
  private state: IndexMapState;
  private byFile: Map<number, Uint32Array>;
  /** The columns the lists index (their state is the map's until a commit, see afterOwnCommit). */
  private listed: MapColumns;

  /** `columns`: of the map's current state, when the caller has them already. */
  constructor(private readonly map: MdboxMap, private readonly fileIds: ReadonlySet<number>, columns = MapColumns.of(map.state, { path: map.paths.mapPrefix })) {
    this.state = columns.state;
    this.listed = columns;
    this.byFile = columns.rowsOfFiles(fileIds);
  }

  /**
   * The records of `fileId` in offset order as the map has them now (their
   * indexes in `columns`), and the state they were read from. Call holding
   * the file's flock, so that no save can add to the file afterwards. Walks
   * the map again only when it changed since the last listing other than by
   * afterOwnCommit().
   */
  entriesOf(fileId: number): { readonly state: IndexMapState; readonly columns: MapColumns; readonly rows: Uint32Array } {
    const state = this.map.refresh();
    if (state !== this.state) {
      this.listed = MapColumns.of(state, { path: this.map.paths.mapPrefix });
      this.state = state;
      this.byFile = this.listed.rowsOfFiles(this.fileIds);
    }
    return { state, columns: this.listed, rows: this.byFile.get(fileId) ?? NO_ROWS };
  }

  /** MdboxMap.recentFiles(), from the columns while they are the map's state. */
  recentFiles(): readonly FileEnd[] {
    return this.listed.state === this.map.state ? this.listed.recentFileEnds(MAX_CANDIDATE_FILES) : this.map.recentFiles();
  }

  /** The files `state`'s records point at, from the columns when they are of `state`. */
  fileIdsInUse(state: IndexMapState): Set<number> | undefined {
    return this.listed.state === state ? this.listed.fileIdsInUse() : undefined;
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
