/**
 * The mdbox map (storage/dovecot.map.index + .log): read as any Dovecot index
 * with the projection, written through its own index writer under ITS
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
import { CallScope } from "../../shared/call-scope.js";
import * as fs from "node:fs";
import { LockTimeoutError } from "../../shared/errors.js";
import { TransactionLog, type AppendResult, type CreateLogOptions, type FsyncMode } from "../../log/log.js";
import type { LogRecord } from "../../log/types.js";
import { readCheckpoint } from "../../index-io/checkpoint-file.js";
import { IndexWriter } from "../../index-io/writer.js";
import type { IndexMapState } from "../../projections/state.js";
import { initialMapRecords } from "../../projections/mdbox-map-format.js";
import { mapEntries, mapEntryReader, mapHeader, recentFileEnds, type FileEnd, type MapEntry } from "../../projections/mdbox-map-view.js";
import { MAX_CANDIDATE_FILES } from "./append-session.js";
import type { StorageLogAppend } from "../driver.js";
import type { MdboxPaths } from "./paths.js";

/** How the map syncs and how long it waits for its lock. */
export interface MdboxMapOptions {
  fsync?: FsyncMode;
  /** Lock wait when nothing else is locked (Dovecot: 3 minutes). */
  lockTimeoutMs?: number;
  /** Lock wait while a mailbox log is locked (saves, expunges); see the module comment. */
  nestedLockTimeoutMs?: number;
}

const DEFAULT_NESTED_LOCK_TIMEOUT_MS = 15_000;

/**
 * Every map transaction is made durable when it is written, as Dovecot
 * commits them (doveadm fdatasyncs the map log even for an expunge's
 * refcount decrements), not only those with appends or expunges (the
 * "optimized" rule for mailbox logs): a refcount a copy raised must be on
 * disk before the mailbox record that counts on it, or a power loss and a
 * later purge could delete a message a mailbox still holds.
 */
function mapLogFsync(mode: FsyncMode | undefined): FsyncMode {
  return mode === "never" || mode === "batch" ? mode : "always";
}

/** How a missing map log is created, as Dovecot does: with dovecot.map.index's indexid, else the current time's and the initial records. */
function createOptions(prefix: string): CreateLogOptions {
  const checkpoint = fs.existsSync(prefix) ? readCheckpoint(prefix) : undefined;
  if (checkpoint) return { indexId: checkpoint.header.indexId };
  const now = Math.floor(Date.now() / 1000);
  return { indexId: now, initialRecords: initialMapRecords(now) };
}

/** What a map transaction's build function returns: transactions to append (none: nothing written). */
export type MapTransactions = ReadonlyArray<readonly LogRecord[]>;

/** The map of one mdbox storage: its state (a projection of the map log) and its writer. */
export class MdboxMap {
  private writer: IndexWriter | undefined;
  private entriesOf: { readonly state: IndexMapState; readonly entries: readonly MapEntry[] } | undefined;
  private readerOf: { readonly state: IndexMapState; readonly read: (mapUid: number) => MapEntry | undefined } | undefined;
  /**
   * Per collectAppends scope, not per map (two mailboxes of one process may
   * commit concurrently, their map writes serialised by the lock, and each
   * commit's hooks must get its own map records only): the map appends made
   * in it, and how to let go early of the map lock it took (if any).
   */
  private readonly appendScopes = new CallScope<{ appends: StorageLogAppend[]; releaseLock: (() => Promise<void>) | undefined }>();

  constructor(readonly paths: MdboxPaths, private readonly options: MdboxMapOptions = {}) {}

  /** Whether the map index exists on disk. */
  exists(): boolean {
    return fs.existsSync(this.paths.mapPrefix + ".log") || fs.existsSync(this.paths.mapPrefix);
  }

  /**
   * Opens the map, creating it when missing as Dovecot does: a new log whose
   * first record sets uid_validity (and indexid) to the current time.
   * Synchronous, because a new mailbox needs the map's uid_validity for its
   * first records. `newLogUnsynced`: a log created here is not synced before
   * it is linked in place (a rebuild, whose first map append syncs it).
   */
  open(options: { newLogUnsynced?: boolean } = {}): this {
    if (this.writer !== undefined) return this;
    this.paths.ensureDirs();
    const prefix = this.paths.mapPrefix;
    // Only a log created here needs dovecot.map.index's indexid: with the log there, the index
    // is not decoded twice (IndexWriter.open loads it; 18,000 records at 20k messages).
    const create = fs.existsSync(prefix + ".log") ? undefined : createOptions(prefix);
    if (options.newLogUnsynced && create) TransactionLog.createIfMissing(prefix, create, "never");
    this.writer = IndexWriter.open(prefix, { fsync: mapLogFsync(this.options.fsync), lockTimeoutMs: this.options.lockTimeoutMs, create });
    return this;
  }

  /** The state as of the last refresh or commit (opens the map first). */
  get state(): IndexMapState {
    return this.open().writer!.state;
  }

  /** uid_validity of the map: what every mailbox's mdbox-hdr must repeat. */
  get uidValidity(): number {
    return this.state.header.uidValidity;
  }

  /** Reads what other processes appended and advances the state. */
  refresh(): IndexMapState {
    return this.open().writer!.refresh();
  }

  /** @returns the entry of `mapUid`, refreshing once when it is not known yet. */
  lookup(mapUid: number): MapEntry | undefined {
    return this.entryReader(this.state)(mapUid) ?? this.entryReader(this.refresh())(mapUid);
  }

  /** The state's mapEntryReader, kept while the state is current. */
  private entryReader(state: IndexMapState): (mapUid: number) => MapEntry | undefined {
    if (this.readerOf?.state !== state) this.readerOf = { state, read: mapEntryReader(state) };
    return this.readerOf.read;
  }

  /**
   * Every placed record of the current state (read-only: shared by callers
   * until the state changes).
   */
  entries(): readonly MapEntry[] {
    const state = this.state;
    if (this.entriesOf?.state !== state) this.entriesOf = { state, entries: mapEntries(state) };
    return this.entriesOf.entries;
  }

  /** The files a save may append to: the map's last MAX_CANDIDATE_FILES distinct files with their ends (see recentFileEnds). */
  recentFiles(): readonly FileEnd[] {
    return recentFileEnds(this.state, MAX_CANDIDATE_FILES);
  }

  get highestFileId(): number {
    return mapHeader(this.state).highestFileId;
  }

  /** See IndexWriter.indexTail; nothing when there is no map yet. */
  async indexTail(): Promise<void> {
    if (this.writer === undefined && !this.exists()) return;
    await this.open().writer!.indexTail();
  }

  /**
   * Runs `fn` holding the map lock (waiting as long as work that holds no
   * other lock may): map transactions inside it re-enter the lock. Mailbox
   * commits that change the map run inside this, so the map is locked
   * before the mailbox, in Dovecot's order.
   */
  holdLock<T>(fn: (release: () => Promise<void>) => Promise<T>): Promise<T> {
    return this.open().writer!.transactionLog.holdLock(fn);
  }

  /**
   * Runs `build` under the map lock with the state caught up, and appends
   * what it returns, ended like every Dovecot map write by the tail-offset
   * update (a map whose tail stops short of the head tells Dovecot that
   * someone crashed mid-sync: "Inconsistency in map index", and it rebuilds
   * the storage). `nested` = the caller holds a mailbox lock: wait only
   * briefly for the map (LockTimeoutError otherwise). `afterAppend` runs
   * once what build returned is written (and synced, as the map's fsync
   * mode says), still under the lock and before dovecot.map.index may be
   * rewritten: a purge deletes its old files there, so that their last
   * closes (the kernel freeing their pages) overlap that rewrite.
   * @returns the append, or undefined when build returned nothing.
   */
  async transact(build: (state: IndexMapState) => Promise<MapTransactions>, opts: { nested?: boolean; afterAppend?: () => Promise<void> } = {}): Promise<AppendResult | undefined> {
    const writer = this.open().writer!;
    const lockTimeoutMs = opts.nested ? this.options.nestedLockTimeoutMs ?? DEFAULT_NESTED_LOCK_TIMEOUT_MS : undefined;
    try {
      return await writer.sync(async (sync) => {
        const transactions = await build(sync.state);
        const modseqBefore = sync.state.logModseq;
        const written = await sync.append(transactions, { syncTail: transactions.some((t) => t.length > 0) });
        if (written !== undefined && written.transactions.length > 0) {
          this.noteAppend({ log: "map", indexPrefix: writer.prefix, start: written.start, end: written.end, modseqBefore });
          await opts.afterAppend?.();
        }
        return written;
      }, "due", { lockTimeoutMs });
    } catch (err) {
      if (err instanceof LockTimeoutError && opts.nested) {
        throw new LockTimeoutError("the mdbox map is locked by another process; gave up so that it can finish (it locks the map before the mailbox)", { path: writer.prefix + ".log" });
      }
      throw err;
    }
  }

  /**
   * Runs `fn` noting every map append made inside it (its async scope):
   * what a mailbox commit, purge or altmove wrote to the map, for hooks
   * that ship it (StorageLogAppend).
   */
  async collectAppends<T>(fn: () => Promise<T>, releaseLock?: () => Promise<void>): Promise<{ value: T; appends: StorageLogAppend[] }> {
    const appends: StorageLogAppend[] = [];
    const value = await this.appendScopes.run({ appends, releaseLock }, fn);
    return { value, appends };
  }

  /** The appends noted so far in the innermost collectAppends scope around the caller (none outside one). */
  appendsInScope(): readonly StorageLogAppend[] {
    return this.appendScopes.getStore()?.appends ?? [];
  }

  /**
   * Lets go of the map lock that the innermost collectAppends scope around
   * the caller took (its `releaseLock`, holdLock's release) before the
   * scope ends; nothing when that scope took none (a flag change, or a
   * commit inside a purge, whose lock the purge holds).
   */
  async releaseLockOfScope(): Promise<void> {
    await this.appendScopes.getStore()?.releaseLock?.();
  }

  /**
   * An append belongs to the innermost scope only: a mailbox commit made
   * inside a purge's scope ships its map records once, with the commit.
   */
  private noteAppend(append: StorageLogAppend): void {
    this.appendScopes.getStore()?.appends.push(append);
  }

  async close(): Promise<void> {
    await this.writer?.close();
    this.writer = undefined;
  }
}
