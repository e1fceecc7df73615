/**
 * The state of the index map projection: what Dovecot's struct
 * mail_index_map holds after syncing the log (header, extensions, keywords,
 * records), plus the little sync-context Dovecot carries from one record to
 * the next (the "current extension" an EXT_INTRO selected).
 *
 * Everything but `records` is small and immutable, and is changed with immer.
 * `records` is a RecordStore (chunked rows with copy-on-write), kept out of
 * immer's drafts so that a commit costs what it touches, not the mailbox size.
 */
import { freeze } from "immer";
import { initialBaseHeader, BASE_RECORD_SIZE, type IndexBaseHeader } from "./base-header.js";
import { RecordStore } from "./record-store.js";

/** One extension, in ext_id order (struct mail_index_ext + its header data). */
export interface ExtensionInfo {
  readonly name: string;
  readonly resetId: number;
  readonly hdrSize: number;
  /** Offset of the per-message field in a record; 0 when recordSize is 0. */
  readonly recordOffset: number;
  readonly recordSize: number;
  readonly recordAlign: number;
  /**
   * The header data padded to a multiple of 8 bytes, as Dovecot keeps it:
   * bytes past hdrSize are normally zero but survive a shrink within the same
   * padded size, and Dovecot writes them to dovecot.index as they are.
   */
  readonly hdrData: Uint8Array;
}

/**
 * The extension the last EXT_INTRO selected (Dovecot's cur_ext_map_idx):
 * EXT_RESET, EXT_HDR_UPDATE(32), EXT_REC_UPDATE and EXT_ATOMIC_INC apply to it.
 * It survives transaction ends because Dovecot's own first two records of a
 * new sdbox log (intro + header update) are written without a boundary.
 */
export interface CurrentExt {
  /** ext_id of the selected extension. */
  readonly extId: number;
  /** The intro's reset_id was stale: following updates are ignored (resets are not). */
  readonly ignore: boolean;
  /** record_size carried by the intro (what EXT_REC_UPDATE entries hold). */
  readonly recordSize: number;
}

export interface IndexMapState {
  /** The stored base-header fields (header_size, record_size, messages_count are derived). */
  readonly header: IndexBaseHeader;
  /** Bytes base_header_size beyond the 120 Dovecot 2.3 knows (normally none). */
  readonly baseHeaderExtra: Uint8Array;
  /** Extensions by ext_id. */
  readonly extensions: readonly ExtensionInfo[];
  /** Keyword names by keyword index (= bit in the keywords bitmap). */
  readonly keywords: readonly string[];
  readonly records: RecordStore;
  /**
   * The log's running modseq at the state's position (transaction-log.md §8);
   * 0 when unknown (a checkpoint not yet advanced).
   */
  readonly logModseq: bigint;
  readonly currentExt: CurrentExt | null;
  /** An EXTERNAL INDEX_DELETED was seen (the mailbox is deleted). */
  readonly deleted: boolean;
  /** A non-EXTERNAL INDEX_DELETED asked for deletion; the next sync finishes it. */
  readonly deleteRequested: boolean;
  /** Records carrying the DIRTY flag; lets HAVE_DIRTY be cleared without a scan. */
  readonly dirtyCount: number;
}

export interface EmptyIndexMapOptions {
  /** The log's indexid (Dovecot gives a new map the index's indexid). */
  indexId?: number;
}

/** The map of an index that has no dovecot.index yet: what a replay from scratch starts with. */
export function emptyIndexMap(opts: EmptyIndexMapOptions = {}): IndexMapState {
  return freeze(
    {
      header: initialBaseHeader(opts.indexId ?? 0),
      baseHeaderExtra: new Uint8Array(0),
      extensions: [],
      keywords: [],
      records: RecordStore.empty(BASE_RECORD_SIZE),
      logModseq: 0n,
      currentExt: null,
      deleted: false,
      deleteRequested: false,
      dirtyCount: 0,
    },
    true,
  );
}

/** ext_id of the extension called `name` (exact match, as Dovecot's lookup), or -1. */
export function extIdOf(state: Pick<IndexMapState, "extensions">, name: string): number {
  return state.extensions.findIndex((e) => e.name === name);
}
