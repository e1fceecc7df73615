/**
 * What the parts of one Maildir mailbox share: its directories, the
 * uidlist and keywords files with their caches, the memo of file names, and
 * the uidlist lock.
 *
 * Lock order. Dovecot takes the uidlist lock first and the log lock second.
 * Commits do the same: the backend's withCommitLocks() takes the uidlist
 * lock before Mailbox takes the log lock, and the driver methods called
 * inside re-enter it. A refresh calls syncExternalChanges() with the log
 * lock already held; if Dovecot then holds the uidlist lock it may be
 * waiting for our log lock, so the sync waits only briefly and then leaves
 * the work to Dovecot, which is syncing the same files and will log what it
 * finds.
 */
import { CallScope } from "../../shared/call-scope.js";
import * as path from "node:path";
import { MAILDIR_LOCK_TOUCH_MS, takeDotlock, type Dotlock } from "../dotlock.js";
import { cleanupMaildirTmp } from "./tmp-cleanup.js";
import { MaildirFileMemo } from "./file-memo.js";
import { KeywordsFile } from "./keywords-table.js";
import { MAILDIR_KEYWORDS_FILE_NAME } from "./keywords-file.js";
import { MAILDIR_UIDLIST_FILE_NAME } from "./uidlist.js";
import { UidlistFile } from "./uidlist-file.js";
import { makeDirs } from "../../shared/make-dirs.js";

/** Tunables of the Maildir driver. */
export interface MaildirSettings {
  /** fsync message files, directories and the uidlist (Dovecot's mail_fsync ≠ never). Default true. */
  readonly fsync?: boolean;
  /** How long a commit waits for the uidlist lock (default 10 s). */
  readonly saveLockTimeoutMs?: number;
  /** How long a sync waits for the uidlist lock before leaving the work to its holder (default 1 s). */
  readonly syncLockTimeoutMs?: number;
  /** Dovecot's mail_temp_scan_interval in seconds: how often tmp/ is scanned for stale files (default 1 week, 0 = never; tmp-cleanup.ts). */
  readonly tempScanIntervalSecs?: number;
}

/**
 * Dovecot looks at tmp/ each time a mailbox is opened; an open context
 * looks at its first sync, then again at most this often (one stat(); the
 * timestamps of tmp/ decide whether it is scanned, see tmp-cleanup.ts).
 */
const TMP_CHECK_EVERY_SECS = 60 * 60;

/** The uidlist locks the current async call chain holds, by uidlist path. */
const heldUidlists = new CallScope<ReadonlySet<string>>();

export class MaildirContext {
  readonly uidlist: UidlistFile;
  readonly keywords: KeywordsFile;
  readonly files: MaildirFileMemo;
  readonly fsync: boolean;
  /** When tmp/ was last looked at (seconds), by maybeCleanupTmp(). */
  private tmpCheckedAt: number | undefined;

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
   * Deletes stale files from tmp/ the way Dovecot does (tmp-cleanup.ts), at
   * the first call and then at most once an hour.
   */
  maybeCleanupTmp(nowSecs: number): void {
    if (this.tmpCheckedAt !== undefined && nowSecs - this.tmpCheckedAt < TMP_CHECK_EVERY_SECS) return;
    this.tmpCheckedAt = nowSecs;
    cleanupMaildirTmp(path.join(this.mailDir, "tmp"), { scanIntervalSecs: this.settings.tempScanIntervalSecs, nowSecs });
  }

  /** Releases open files. */
  close(): void {
    this.uidlist.close();
  }

  /**
   * Runs `fn` holding the uidlist dotlock. Re-entrant within one async call
   * chain (a commit takes it before the log lock, the driver methods it
   * calls take it again); other chains of this process wait on the lock
   * file like any other process.
   * @throws LockTimeoutError after `timeoutMs`.
   */
  async withUidlistLock<T>(timeoutMs: number, fn: () => Promise<T>): Promise<T> {
    const held = heldUidlists.getStore();
    if (held?.has(this.uidlist.path)) return fn();
    makeDirs(this.controlDir);
    const lock: Dotlock = await takeDotlock(this.uidlist.path, { timeoutMs, touchEveryMs: MAILDIR_LOCK_TOUCH_MS });
    try {
      return await heldUidlists.run(new Set([...(held ?? []), this.uidlist.path]), fn);
    } finally {
      lock.release();
    }
  }
}
