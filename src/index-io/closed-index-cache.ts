import * as fs from "node:fs";
import { decodeLogHeader } from "../log/header.js";
import { readRange, releaseLogFile, type SharedLogFile } from "../log/shared-file.js";
import type { LogPosition } from "../log/types.js";
import type { IndexMapState } from "../projections/state.js";

/**
 * The states of indexes closed a moment ago, so that a process that opens
 * the same mailbox again (a server's next command on it, a step of a
 * script) reads only what was appended since instead of dovecot.index plus
 * its log tail. Dovecot's index storage does the same: a closed index stays
 * open in its alloc cache for 10 s.
 *
 * An entry keeps its head log file open. While it is held the inode cannot
 * be reused, so "the log path still names this inode, with the same
 * indexid and file_seq" proves the state continues that very file; anything
 * else (a rotation, a recreated or rebuilt log) and the entry is dropped
 * and the mailbox loads from its files as usual.
 */
export interface ClosedIndex {
  readonly state: IndexMapState;
  /** Where dovecot.index pointed, as far as the closed writer knew. */
  readonly indexedAt: LogPosition | undefined;
  /** The head log file the state ends in, held by this entry. */
  readonly file: SharedLogFile;
}

/** Kept as given, not spread: a writer's state may be a getter that folds what it appended last only when read. */
interface Entry {
  readonly closed: ClosedIndex;
  readonly closedAt: number;
}

/** Dovecot's INDEX_CACHE_TIMEOUT. */
const KEEP_MS = 10_000;
/** Bound on the states kept (each holds one descriptor and its mailbox's records). */
const MAX_ENTRIES = 16;

export class ClosedIndexCache {
  private readonly entries = new Map<string, Entry>();
  private sweep: NodeJS.Timeout | undefined;

  constructor(private readonly keepMs = KEEP_MS, private readonly maxEntries = MAX_ENTRIES) {}

  /** Keeps `closed` for `prefix`, replacing (and releasing) an older entry. Takes over the file's reference. */
  put(prefix: string, closed: ClosedIndex): void {
    this.drop(prefix);
    this.entries.set(prefix, { closed, closedAt: Date.now() });
    while (this.entries.size > this.maxEntries) this.drop(this.entries.keys().next().value!);
    this.scheduleSweep();
  }

  /**
   * The entry for `prefix` when it still continues the log at the path;
   * removed either way. The caller owns the returned file reference.
   */
  take(prefix: string): ClosedIndex | undefined {
    const entry = this.entries.get(prefix);
    if (!entry) return undefined;
    this.entries.delete(prefix);
    if (Date.now() - entry.closedAt <= this.keepMs && continuesLog(prefix, entry.closed)) return entry.closed;
    releaseLogFile(entry.closed.file);
    return undefined;
  }

  /**
   * The state kept for `prefix` when it still continues the log at the
   * path, for a reader that only looks (the entry stays, for the next
   * open); a stale entry is dropped. The state may lag the log: read what
   * follows it (loadStateFrom).
   */
  stateOf(prefix: string): IndexMapState | undefined {
    const entry = this.entries.get(prefix);
    if (!entry) return undefined;
    if (Date.now() - entry.closedAt <= this.keepMs && continuesLog(prefix, entry.closed)) return entry.closed.state;
    this.drop(prefix);
    return undefined;
  }

  /** Whether an entry for `prefix` is kept (take() may still find it stale). */
  holds(prefix: string): boolean {
    return this.entries.has(prefix);
  }

  /** Forgets `prefix`'s entry, or all entries (a mailbox deleted, renamed or rebuilt; the storage closed). */
  clear(prefix?: string): void {
    if (prefix !== undefined) this.drop(prefix);
    else for (const key of [...this.entries.keys()]) this.drop(key);
  }

  private drop(prefix: string): void {
    const entry = this.entries.get(prefix);
    if (!entry) return;
    this.entries.delete(prefix);
    releaseLogFile(entry.closed.file);
  }

  private scheduleSweep(): void {
    if (this.sweep) return;
    // Unreferenced: a kept index never holds the process open.
    this.sweep = setTimeout(() => {
      this.sweep = undefined;
      const now = Date.now();
      for (const [prefix, entry] of [...this.entries]) if (now - entry.closedAt > this.keepMs) this.drop(prefix);
      if (this.entries.size > 0) this.scheduleSweep();
    }, this.keepMs).unref();
  }
}

/** The log at `prefix` is the held file, still in the state's log file. */
function continuesLog(prefix: string, entry: ClosedIndex): boolean {
  let st: fs.Stats;
  try {
    st = fs.statSync(prefix + ".log");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false; // deleted meanwhile
    throw err;
  }
  if (st.ino !== entry.file.ino || st.dev !== entry.file.dev) return false;
  const header = decodeLogHeader(readRange(entry.file, 0, LOG_HEADER_PEEK), entry.file.path);
  const h = entry.state.header;
  return header.indexId === h.indexId && header.fileSeq === h.logFileSeq && st.size >= h.logFileHeadOffset;
}

/** Bytes read to decode a log header (Dovecot's is 40). */
const LOG_HEADER_PEEK = 64;
