/**
 * `doveadm force-resync` for the formats whose mail files are the truth
 * (Maildir, mbox). Their index is a cache of the files plus UID bookkeeping
 * that the files keep too (dovecot-uidlist and file names; X-UID,
 * X-IMAPbase, Status, X-Status, X-Keywords), so a resync is the format's own
 * sync with nothing skipped. What Dovecot 2.3.19 does, observed with doveadm
 * and strace, and what this does alike:
 *
 * - The index is readable: the usual sync runs with its quick checks off
 *   (Maildir: new/ and cur/ read whatever their mtimes say; mbox: the whole
 *   file read whatever its size and mtime say) and what differs is appended
 *   as EXTERNAL transactions, so change streams see it like any change
 *   made outside.
 * - dovecot.index.log or dovecot.index is unreadable (a typed error of
 *   src/log or src/projections): Dovecot unlinks the broken file (a log
 *   with a bad header; a bad dovecot.index, whose log it then replaces too)
 *   and starts a new log; the files give back UIDVALIDITY, UIDs, flags and
 *   keywords. Here the broken index files (dovecot.index, .log, .log.2) are
 *   deleted and a new log is created and filled by the full sync. The
 *   history in the old log is lost, as with Dovecot; no message is, since
 *   none lives in the index. dovecot.index.cache is left alone: Dovecot
 *   keeps it and drops it itself when its indexid does not match.
 *
 * Locks are taken in Dovecot's order: the format's own (Maildir: the
 * uidlist dotlock; mbox: its dotlock and fcntl lock, withCommitLocks)
 * before the log's. Open Mailbox objects of this process keep following a
 * readable log; after a broken one is replaced they must be reopened.
 */
import * as fs from "node:fs";
import { isCorruptionError, MailstoreError, type MailstoreErrorCode } from "../shared/errors.js";
import type { FsyncMode } from "../log/log.js";
import { IndexWriter, type IndexWriterOptions } from "../index-io/writer.js";
import { messageCount } from "../projections/read.js";
import type { IndexMapState } from "../projections/state.js";
import type { ExternalSyncOptions, FileSyncResult, MailboxBackend, StorageBackend } from "./driver.js";

/** A mailbox backend whose sync can be forced (Maildir, mbox). */
export interface ResyncableBackend extends MailboxBackend {
  /** The format's sync; `force` turns its quick checks off. Called under the format's locks and the log lock. */
  syncExternalChanges(state: IndexMapState, opts: ExternalSyncOptions): Promise<FileSyncResult>;
}

/** What force-resync did to one mailbox. */
export interface FilesResyncResult {
  readonly mailbox: string;
  /** Set when the index was unreadable: the error's code. Its files were deleted and a new log started. */
  readonly discarded?: MailstoreErrorCode;
  /** Transactions appended (0: the index already matched the files). */
  readonly transactions: number;
  /** Messages in the mailbox afterwards. */
  readonly messages: number;
}

/**
 * Errors that mean "the index files are to be replaced", as opposed to locks,
 * permissions or I/O: corruption, and (force-resync only) a log this library
 * cannot read.
 */
function isBrokenIndexError(err: unknown): err is MailstoreError {
  return isCorruptionError(err) || (err instanceof MailstoreError && err.code === "LOG_INCOMPATIBLE");
}

/** The index files a new log replaces (not dovecot.index.cache: see the module comment). */
const INDEX_SUFFIXES = ["", ".log", ".log.2"] as const;

/**
 * The index writer of `prefix`, or why the index cannot be read (its
 * files are then to be replaced); undefined for both when there is no log.
 */
function openReadableIndex(prefix: string, opts: IndexWriterOptions): { writer?: IndexWriter; broken?: MailstoreError } {
  if (!fs.existsSync(prefix + ".log")) {
    // dovecot.index without its log: its history is gone; the files are rescanned from a new log.
    return fs.existsSync(prefix) ? { broken: new MailstoreError("INDEX_CORRUPTED", "dovecot.index without dovecot.index.log", { path: prefix }) } : {};
  }
  try {
    return { writer: IndexWriter.open(prefix, opts) };
  } catch (err) {
    if (isBrokenIndexError(err)) return { broken: err };
    throw err;
  }
}

/**
 * Resyncs one mailbox from its mail files (see the module comment).
 * @param newUidValidity used only when the files have no UIDVALIDITY either.
 */
export async function resyncFromMailFiles(
  name: string,
  backend: ResyncableBackend,
  newUidValidity: () => Promise<number>,
  opts: { fsync?: FsyncMode } = {},
): Promise<FilesResyncResult> {
  const prefix = backend.indexPrefix;
  const locked = <T>(fn: () => Promise<T>): Promise<T> => (backend.withCommitLocks ? backend.withCommitLocks(fn) : fn());
  return locked(async () => {
    const writerOptions: IndexWriterOptions = { fsync: opts.fsync, filesFollowTail: true, keepsIndexBackup: backend.keepsIndexBackup };
    const { writer: readable, broken } = openReadableIndex(prefix, writerOptions);
    if (broken) for (const suffix of INDEX_SUFFIXES) fs.rmSync(prefix + suffix, { force: true });
    const writer = readable ?? IndexWriter.open(prefix, {
      ...writerOptions,
      create: { initialRecords: backend.initialRecords(await newUidValidity()) },
    });
    try {
      const written = await writer.sync(async (sync) => {
        const found = await backend.syncExternalChanges(sync.state, { force: true, logHead: sync.logHead, unsyncedEffects: sync.unsyncedEffects });
        return sync.append(found.transactions, { syncTail: found.filesSynced });
      });
      return {
        mailbox: name,
        ...(broken ? { discarded: broken.code } : {}),
        transactions: written?.transactions.length ?? 0,
        messages: messageCount(writer.state),
      };
    } finally {
      await writer.close();
    }
  });
}

/**
 * force-resync of `mailbox` ("*" = every mailbox) in a storage of such a
 * format. INBOX is created when missing, as opening it would; another
 * missing mailbox is NOT_FOUND.
 */
export async function resyncStorage(
  storage: StorageBackend,
  mailbox: string,
  open: (name: string) => ResyncableBackend,
): Promise<FilesResyncResult[]> {
  const names = mailbox === "*" ? await storage.listMailboxes() : [mailbox.toUpperCase() === "INBOX" ? "INBOX" : mailbox];
  const results: FilesResyncResult[] = [];
  for (const name of names) {
    if (!(await storage.mailboxExists(name))) {
      if (name !== "INBOX") throw new MailstoreError("NOT_FOUND", `mailbox ${name} does not exist`);
      await storage.createMailbox(name);
    }
    const backend = open(name);
    try {
      results.push(await resyncFromMailFiles(name, backend, () => storage.nextUidValidity()));
    } finally {
      await backend.close();
    }
  }
  return results;
}
