/**
 * What the parts of one Maildir mailbox share: its directories, the
 * uidlist and keywords files with their caches, the memo of file names, and
 * the uidlist lock.
 *
 * Lock order. Dovecot takes the uidlist lock first and the log lock second.
 * The engine calls every driver method with the log lock already held, so
 * the driver takes the uidlist lock second. If Dovecot holds the uidlist lock
 * while waiting for our log lock, neither would move: so the driver never
 * waits long. A sync that cannot get the lock quickly gives up (Dovecot is
 * syncing the same files and will log what it finds); a save waits longer
 * and then fails with LockTimeoutError, which releases the log lock.
 */
import * as path from "node:path";
import { takeDotlock, type Dotlock } from "./dotlock.js";
import { MaildirFileMemo } from "./file-memo.js";
import { KeywordsFile } from "./keywords-table.js";
import { MAILDIR_KEYWORDS_FILE_NAME } from "./keywords-file.js";
import { MAILDIR_UIDLIST_FILE_NAME } from "./uidlist.js";
import { UidlistFile } from "./uidlist-file.js";

/** Tunables of the Maildir driver. */
export interface MaildirSettings {
  /** fsync message files, directories and the uidlist (Dovecot's mail_fsync ≠ never). Default true. */
  readonly fsync?: boolean;
  /** How long a save waits for the uidlist lock (default 10 s). */
  readonly saveLockTimeoutMs?: number;
  /** How long a sync waits for the uidlist lock before leaving the work to its holder (default 1 s). */
  readonly syncLockTimeoutMs?: number;
}

export class MaildirContext {
  readonly uidlist: UidlistFile;
  readonly keywords: KeywordsFile;
  readonly files: MaildirFileMemo;
  readonly fsync: boolean;
  private held: { lock: Dotlock; depth: number } | undefined;

  constructor(
    /** The mailbox's name ("/"-separated). */
    readonly name: string,
    /** The Maildir: cur/ new/ tmp/. */
    readonly mailDir: string,
    /** Where dovecot-uidlist and dovecot-keywords live. */
    readonly controlDir: string,
    /** `<index dir>/dovecot.index`. */
    readonly indexPrefix: string,
    readonly settings: MaildirSettings,
    /** Allocates a UIDVALIDITY for a mailbox that has none yet. */
    readonly nextUidValidity: () => Promise<number>,
  ) {
    this.fsync = settings.fsync ?? true;
    this.uidlist = new UidlistFile(path.join(controlDir, MAILDIR_UIDLIST_FILE_NAME), this.fsync);
    this.keywords = new KeywordsFile(path.join(controlDir, MAILDIR_KEYWORDS_FILE_NAME), this.fsync);
    this.files = new MaildirFileMemo(mailDir);
  }

  /**
   * Runs `fn` holding the uidlist dotlock (re-entrant within this mailbox,
   * so a caller that took it before the log lock can keep it for the driver).
   * @throws LockTimeoutError after `timeoutMs`.
   */
  async withUidlistLock<T>(timeoutMs: number, fn: () => Promise<T>): Promise<T> {
    if (this.held) {
      this.held.depth++;
    } else {
      this.held = { lock: await takeDotlock(this.uidlist.path, { timeoutMs }), depth: 1 };
    }
    try {
      return await fn();
    } finally {
      if (--this.held!.depth === 0) {
        this.held!.lock.release();
        this.held = undefined;
      }
    }
  }
}
