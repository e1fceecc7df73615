/**
 * The mdbox map (storage/dovecot.map.index + .log): read as any Dovecot index
 * with the projection, written through its own TransactionLog under ITS
 * lock, as Dovecot locks the map log whenever it changes the map.
 *
 * Two lock waits: a plain one for work that holds no other lock (purge,
 * rebuild, recovery), and a short one for saves and expunges, which the
 * driver interface calls while the mailbox log is already locked. Dovecot
 * 2.3 takes the map lock *before* the mailbox lock (mdbox-save.c: "lock the
 * mailbox after map to avoid deadlocks"; mdbox-sync.c drops the mailbox lock
 * to take the map first when it has expunges), so a save that waited for
 * the map while holding a mailbox lock could wait forever on a Dovecot
 * process waiting for that mailbox. Giving up after the short wait breaks
 * the cycle: our commit fails with LockTimeoutError, Dovecot goes on.
 */
import * as fs from "node:fs";
import { LockTimeoutError } from "../../shared/errors.js";
import { TransactionLog, type AppendResult, type FsyncMode } from "../../log/log.js";
import type { LogFileHeader, LogRecord, LogTransaction } from "../../log/types.js";
import { isBefore, loadState, readSince } from "../../index-io/load-state.js";
import { enterLogFile, replay } from "../../projections/apply.js";
import { readCheckpoint, writeCheckpoint } from "../../index-io/checkpoint-file.js";
import { getHeader, position } from "../../projections/read.js";
import type { IndexMapState } from "../../projections/state.js";
import { encodeTransaction } from "../../log/encode-file.js";
import { initialMapRecords } from "../../projections/mdbox-map-format.js";
import { lookupMapEntry, mapEntries, mapHeader, type MapEntry } from "../../projections/mdbox-map-view.js";
import type { MdboxPaths } from "./paths.js";

/** How the map syncs and how long it waits for its lock. */
export interface MdboxMapOptions {
  fsync?: FsyncMode;
  /** Lock wait when nothing else is locked (Dovecot: 3 minutes). */
  lockTimeoutMs?: number;
  /** Lock wait while a mailbox log is locked (saves, expunges); see the module comment. */
  nestedLockTimeoutMs?: number;
}

/** Dovecot's mail_index_rewrite_max_log_bytes: write dovecot.map.index past this much unindexed log. */
const REWRITE_MAX_LOG_BYTES = 128 * 1024;
const DEFAULT_NESTED_LOCK_TIMEOUT_MS = 15_000;

/** What a map transaction's build function returns: transactions to append (none: nothing written). */
export type MapTransactions = ReadonlyArray<readonly LogRecord[]>;

/** The map of one mdbox storage: its state (a projection of the map log) and its writer. */
export class MdboxMap {
  private log: TransactionLog | undefined;
  private nestedLog: TransactionLog | undefined;
  private current: IndexMapState | undefined;
  private indexedAt = -1;

  constructor(readonly paths: MdboxPaths, private readonly options: MdboxMapOptions = {}) {}

  /** Whether the map index exists on disk. */
  exists(): boolean {
    return fs.existsSync(this.paths.mapPrefix + ".log") || fs.existsSync(this.paths.mapPrefix);
  }

  /**
   * Opens the map, creating it when missing as Dovecot does: a new log whose
   * first record sets uid_validity (and indexid) to the current time.
   * Synchronous, because a new mailbox needs the map's uid_validity for its
   * first records.
   */
  open(): this {
    if (this.log !== undefined) return this;
    this.paths.ensureDirs();
    const prefix = this.paths.mapPrefix;
    const now = Math.floor(Date.now() / 1000);
    const checkpoint = fs.existsSync(prefix) ? readCheckpoint(prefix) : undefined;
    const create = checkpoint
      ? { indexId: checkpoint.header.indexId }
      : { indexId: now, initialRecords: initialMapRecords(now) };
    const common = { fsync: this.options.fsync, create };
    const log = TransactionLog.open(prefix, { ...common, lockTimeoutMs: this.options.lockTimeoutMs });
    let nestedLog: TransactionLog | undefined;
    try {
      nestedLog = TransactionLog.open(prefix, { ...common, lockTimeoutMs: this.options.nestedLockTimeoutMs ?? DEFAULT_NESTED_LOCK_TIMEOUT_MS });
      this.current = loadState(prefix);
    } catch (err) {
      void log.close();
      void nestedLog?.close();
      throw err;
    }
    this.log = log;
    this.nestedLog = nestedLog;
    this.indexedAt = -1;
    return this;
  }

  /** The state as of the last refresh or commit (opens the map first). */
  get state(): IndexMapState {
    return this.open().current!;
  }

  /** uid_validity of the map: what every mailbox's mdbox-hdr must repeat. */
  get uidValidity(): number {
    return this.state.header.uidValidity;
  }

  /** Reads what other processes appended and advances the state. */
  refresh(): IndexMapState {
    this.open();
    this.catchUp();
    return this.current!;
  }

  /** @returns the entry of `mapUid`, refreshing once when it is not known yet. */
  lookup(mapUid: number): MapEntry | undefined {
    return lookupMapEntry(this.state, mapUid) ?? lookupMapEntry(this.refresh(), mapUid);
  }

  /** Every placed record of the current state. */
  entries(): MapEntry[] {
    return mapEntries(this.state);
  }

  get highestFileId(): number {
    return mapHeader(this.state).highestFileId;
  }

  /**
   * Runs `fn` holding the map lock (waiting as long as work that holds no
   * other lock may): map transactions inside it re-enter the lock. Mailbox
   * commits run inside this, so the map is locked before the mailbox, in
   * Dovecot's order.
   */
  holdLock<T>(fn: () => Promise<T>): Promise<T> {
    this.open();
    return this.log!.holdLock(fn);
  }

  /**
   * Runs `build` under the map lock with the state caught up, and appends
   * what it returns. `nested` = the caller holds a mailbox lock: wait only
   * briefly for the map (LockTimeoutError otherwise).
   * @returns the append, or undefined when build returned nothing.
   */
  async transact(build: (state: IndexMapState) => Promise<MapTransactions>, opts: { nested?: boolean } = {}): Promise<AppendResult | undefined> {
    this.open();
    const log = opts.nested ? this.nestedLog! : this.log!;
    let result: AppendResult | undefined;
    try {
      result = await log.transact(async () => {
        this.catchUp();
        const transactions = await build(this.current!);
        return withTailOffset(transactions, log.headPosition.offset);
      });
    } catch (err) {
      if (err instanceof LockTimeoutError && opts.nested) {
        throw new LockTimeoutError("the mdbox map is locked by another process; gave up so that it can finish (it locks the map before the mailbox)", { path: log.headPath });
      }
      throw err;
    }
    if (result) {
      this.advance(result.transactions);
      await this.maybeCheckpoint(log);
    }
    return result;
  }

  async close(): Promise<void> {
    await this.log?.close();
    await this.nestedLog?.close();
    this.log = this.nestedLog = undefined;
    this.current = undefined;
  }

  private catchUp(): void {
    try {
      const read = readSince(this.paths.mapPrefix, this.current!);
      this.advance(read.transactions, read.headers);
    } catch {
      // Our position is gone (rotated twice, or the map was recreated): start over from the files.
      this.current = loadState(this.paths.mapPrefix);
    }
  }

  /** Folds `transactions` not yet in the state; `headers` (of the files read) let the fold cross a rotation. */
  private advance(transactions: readonly LogTransaction[], headers: readonly LogFileHeader[] = []): void {
    const at = position(this.current!);
    const fresh = transactions.filter((tx) => !isBefore(tx.position, at));
    if (fresh.length === 0) return;
    this.current = replay(fresh, this.current!, headers);
  }

  /** Rotates the map log and rewrites dovecot.map.index the way Dovecot decides to, under the lock. */
  private async maybeCheckpoint(log: TransactionLog): Promise<void> {
    const head = log.headPosition;
    const unindexed = head.offset - (this.indexedAt >= 0 && getHeader(this.current!).logFileSeq === head.fileSeq ? this.indexedAt : 0);
    const rotate = log.shouldRotate();
    if (!rotate && unindexed < REWRITE_MAX_LOG_BYTES) return;
    await log.transact(async () => {
      this.catchUp();
      if (rotate && log.shouldRotate()) this.current = enterLogFile(this.current!, await log.rotateLocked());
      writeCheckpoint(this.paths.mapPrefix, this.current!, { backup: false, fsync: this.options.fsync !== "never" });
      this.indexedAt = position(this.current!).offset;
      return [];
    });
  }
}

/** Size of the tail-offset HEADER_UPDATE: record header 8 + patch header 4 + u32. */
const TAIL_RECORD_SIZE = 16;
/** offsetof(struct mail_index_header, log_file_tail_offset). */
const TAIL_OFFSET_FIELD = 64;

/**
 * Every Dovecot writer of the map commits as a sync and ends with an EXTERNAL
 * HEADER_UPDATE of log_file_tail_offset pointing just past itself (observed
 * after every map transaction). A map whose tail stops short of the head
 * tells Dovecot that someone crashed mid-sync: "Inconsistency in map index",
 * and it rebuilds the storage. So our map transactions end the same way;
 * `start` is where they will be written (the log's end, under the lock).
 */
function withTailOffset(transactions: MapTransactions, start: number): MapTransactions {
  const nonEmpty = transactions.filter((t) => t.length > 0);
  if (nonEmpty.length === 0) return [];
  const size = nonEmpty.reduce((n, t) => n + encodeTransaction(t).length, 0);
  const tail = new Uint8Array(4);
  new DataView(tail.buffer).setUint32(0, start + size + TAIL_RECORD_SIZE, true);
  return [...nonEmpty, [{ type: "header-update", external: true, sync: false, patches: [{ offset: TAIL_OFFSET_FIELD, data: tail }] }]];
}
