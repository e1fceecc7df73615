/**
 * Reading and changing a storage's IMAP subscriptions the way Dovecot 2.3
 * does (observed with strace on doveadm 2.3.19):
 *
 * - Readers read the file without a lock: writers replace it by rename.
 * - A change first reads the file unlocked and stops there when there is
 *   nothing to do (no lock taken, no log record). Otherwise it takes the
 *   dotlock `<file>.lock` (O_EXCL create), reads the file again, writes the
 *   new content into the lock file, fsyncs it and renames it over the file,
 *   then appends a SUBSCRIBE/UNSUBSCRIBE record to dovecot.mailbox.log.
 * - Dovecot's lock file is empty, so Dovecot takes it for stale only by age:
 *   it overrode a lock left untouched for 30 s (after waiting ~30 s). Ours
 *   holds `<pid>:<host>`, which Dovecot also checks.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { SubscriptionsCorruptedError } from "../shared/errors.js";
import type { SubscriptionsLocation } from "./driver.js";
import { appendMailboxLog, mailboxLogNameId, MailboxLogType } from "./mailbox-change-log.js";
import { MAILDIR_LOCK_TOUCH_MS, takeDotlock } from "./dotlock.js";
import {
  formatSubscriptions,
  NO_SUBSCRIPTIONS,
  normalizeSubscriptionName,
  parseSubscriptions,
  setSubscribed,
  subscribedNames,
  type SubscriptionsFile,
} from "./subscriptions-file.js";
import { makeDirs } from "../shared/make-dirs.js";

/** Observed: doveadm overrides an untouched subscriptions.lock after 30 s. */
export const SUBSCRIPTIONS_LOCK_STALE_MS = 30_000;

export interface SubscriptionChangeOptions {
  /** How long to wait for the lock (default 60 s: longer than a stale lock lives). */
  lockTimeoutMs?: number;
  /** fsync the new file before the rename, as Dovecot does (default true). */
  fsync?: boolean;
}

/** Reads the file (a missing one is no subscriptions). @throws SubscriptionsCorruptedError for bad content. */
export function readSubscriptionsFile(loc: SubscriptionsLocation): SubscriptionsFile {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(loc.file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return NO_SUBSCRIPTIONS;
    if (code === "EISDIR") throw new SubscriptionsCorruptedError("a directory where the subscriptions file should be", { path: loc.file });
    throw err;
  }
  return parseSubscriptions(bytes, loc, loc.file);
}

/** The subscribed mailbox names ("/"-separated, INBOX upper case), each once, in file order. */
export function listSubscriptions(loc: SubscriptionsLocation): string[] {
  return subscribedNames(readSubscriptionsFile(loc));
}

/**
 * Subscribes to (or unsubscribes from) `name`; the mailbox need not exist.
 * @returns whether the file changed.
 * @throws InvalidArgumentError for a name the storage cannot have;
 *   SubscriptionsCorruptedError for a file it will not rewrite;
 *   LockTimeoutError when the lock stays taken.
 */
export async function setSubscription(loc: SubscriptionsLocation, name: string, subscribe: boolean, opts: SubscriptionChangeOptions = {}): Promise<boolean> {
  const normalized = normalizeSubscriptionName(name, loc);
  if (setSubscribed(readSubscriptionsFile(loc), normalized, loc, subscribe) === undefined) return false;
  makeDirs(path.dirname(loc.file));
  const lock = await takeDotlock(loc.file, { timeoutMs: opts.lockTimeoutMs ?? 60_000, staleMs: SUBSCRIPTIONS_LOCK_STALE_MS, touchEveryMs: MAILDIR_LOCK_TOUCH_MS });
  let next: SubscriptionsFile | undefined;
  try {
    next = setSubscribed(readSubscriptionsFile(loc), normalized, loc, subscribe);
  } catch (err) {
    lock.release();
    throw err;
  }
  if (next === undefined) {
    lock.release();
    return false;
  }
  // On failure replaceTarget removes the lock it still owns (no 30 s wait for the next writer).
  lock.replaceTarget(formatSubscriptions(next), { fsync: opts.fsync ?? true });
  const vname = normalized.split("/").join(loc.separator);
  appendMailboxLog(loc.mailboxLogDir, subscribe ? MailboxLogType.Subscribe : MailboxLogType.Unsubscribe, mailboxLogNameId(vname));
  return true;
}
