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
import { MailstoreError, type MailstoreErrorCode } from "../shared/errors.js";
import { TransactionLog, type FsyncMode } from "../log/log.js";
import type { LogRecord } from "../log/types.js";
import { loadState } from "../index-io/load-state.js";
import { messageCount } from "../projections/read.js";
import type { IndexMapState } from "../projections/state.js";
import type { ExternalSyncOptions, MailboxBackend, StorageBackend } from "./driver.js";

/** A mailbox backend whose sync can be forced (Maildir, mbox). */
export interface ResyncableBackend extends MailboxBackend {
  /** The format's sync; `force` turns its quick checks off. Called under the format's locks and the log lock. */
  syncExternalChanges(state: IndexMapState, opts: ExternalSyncOptions): Promise<LogRecord[][]>;
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

/** Errors that mean "the index files are broken", as opposed to locks, permissions or I/O. */
const BROKEN_INDEX_CODES: ReadonlySet<MailstoreErrorCode> = new Set<MailstoreErrorCode>([
  "LOG_CORRUPTED", "LOG_HEADER_INVALID", "LOG_INCOMPATIBLE", "LOG_CHAIN_BROKEN", "LOG_POSITION_LOST", "INDEX_CORRUPTED",
]);

/** The index files a new log replaces (not dovecot.index.cache: see the module comment). */
const INDEX_SUFFIXES = ["", ".log", ".log.2"] as const;

/** @returns why the index cannot be read, or undefined when it can (or does not exist at all). */
function unreadableIndex(prefix: string): MailstoreError | undefined {
  if (!fs.existsSync(prefix + ".log")) {
    // dovecot.index without its log: its history is gone; the files are rescanned from a new log.
    return fs.existsSync(prefix) ? new MailstoreError("INDEX_CORRUPTED", "dovecot.index without dovecot.index.log", { path: prefix }) : undefined;
  }
  try {
    loadState(prefix);
    return undefined;
  } catch (err) {
    if (err instanceof MailstoreError && BROKEN_INDEX_CODES.has(err.code)) return err;
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
    const broken = unreadableIndex(prefix);
    if (broken) for (const suffix of INDEX_SUFFIXES) fs.rmSync(prefix + suffix, { force: true });
    const create = fs.existsSync(prefix + ".log") ? undefined : { initialRecords: backend.initialRecords(await newUidValidity()) };
    const log = TransactionLog.open(prefix, { fsync: opts.fsync, create });
    let written;
    try {
      written = await log.transact(async () => backend.syncExternalChanges(loadState(prefix), { force: true, logHead: log.headPosition }));
    } finally {
      await log.close();
    }
    return {
      mailbox: name,
      ...(broken ? { discarded: broken.code } : {}),
      transactions: written?.transactions.length ?? 0,
      messages: messageCount(loadState(prefix)),
    };
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
