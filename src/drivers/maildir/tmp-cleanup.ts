/**
 * Removing stale files from a Maildir's tmp/, with Dovecot 2.3's rule
 * (maildir-storage.c, run when a mailbox is opened, and lib's
 * unlink_old_files(); read from doveadm 2.3.19's code and checked with
 * strace):
 *
 * 1. tmp/ itself is stat()ed. Its atime says when it was last scanned,
 *    because a scan starts with utime(tmp, NULL) (atime and mtime = now),
 *    which also keeps other processes from scanning it at the same time.
 * 2. No scan when `mail_temp_scan_interval` is 0, or when
 *    atime > ctime + 36 h: the last scan came more than 36 h after the last
 *    change to tmp/, so it deleted everything that was there and nothing
 *    was created since.
 * 3. Otherwise a scan when atime < now − mail_temp_scan_interval (default
 *    one week): every entry but directories whose **ctime** is more than
 *    36 h (MAILDIR_TMP_DELETE_SECS) in the past is unlinked. The ctime,
 *    not the mtime: a program can set a file's mtime and atime to anything
 *    (utimes, `cp -p`, tar), but not its ctime, so a file that arrived in
 *    tmp/ recently is never deleted, whatever its other times say.
 *
 * Files starting with "." are not skipped (only "." and ".." are), as in
 * Dovecot. Errors other than a file vanishing meanwhile are thrown.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** Dovecot's MAILDIR_TMP_DELETE_SECS: files in tmp/ older than this are stale. */
export const MAILDIR_TMP_DELETE_SECS = 36 * 60 * 60;
/** Dovecot's default mail_temp_scan_interval (1 week). */
export const DEFAULT_TEMP_SCAN_INTERVAL_SECS = 7 * 24 * 60 * 60;

export interface TmpCleanupOptions {
  /** mail_temp_scan_interval in seconds; 0 = never scan (default one week). */
  readonly scanIntervalSecs?: number;
  /** The current time in seconds (tests). */
  readonly nowSecs?: number;
}

/** What a call did: whether tmp/ was scanned, and the names it unlinked. */
export interface TmpCleanupResult {
  readonly scanned: boolean;
  readonly removed: string[];
}

function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === code;
}

/**
 * Applies Dovecot's tmp/ rule (see the module comment) to `tmpDir`.
 * A missing tmp/ is not an error (nothing to clean).
 */
export function cleanupMaildirTmp(tmpDir: string, opts: TmpCleanupOptions = {}): TmpCleanupResult {
  const now = opts.nowSecs ?? Math.floor(Date.now() / 1000);
  const interval = opts.scanIntervalSecs ?? DEFAULT_TEMP_SCAN_INTERVAL_SECS;
  let st: fs.Stats;
  try {
    st = fs.statSync(tmpDir);
  } catch (err) {
    if (isErrno(err, "ENOENT")) return { scanned: false, removed: [] };
    throw err;
  }
  const atime = Math.floor(st.atimeMs / 1000);
  const ctime = Math.floor(st.ctimeMs / 1000);
  if (interval === 0 || atime > ctime + MAILDIR_TMP_DELETE_SECS || atime >= now - interval) return { scanned: false, removed: [] };
  return { scanned: true, removed: unlinkOldFiles(tmpDir, now - MAILDIR_TMP_DELETE_SECS) };
}

/** Dovecot's unlink_old_files(dir, "", minTime): marks the scan, then unlinks non-directories with ctime < minTime. */
function unlinkOldFiles(dir: string, minTime: number): string[] {
  const handle = fs.opendirSync(dir);
  const removed: string[] = [];
  try {
    try {
      fs.utimesSync(dir, new Date(), new Date());
    } catch (err) {
      if (!isErrno(err, "ENOENT")) throw err;
    }
    for (let e = handle.readSync(); e !== null; e = handle.readSync()) {
      const file = path.join(dir, e.name);
      let st: fs.Stats;
      try {
        st = fs.statSync(file);
      } catch (err) {
        if (isErrno(err, "ENOENT")) continue;
        throw err;
      }
      if (st.isDirectory() || Math.floor(st.ctimeMs / 1000) >= minTime) continue;
      try {
        fs.unlinkSync(file);
        removed.push(e.name);
      } catch (err) {
        if (!isErrno(err, "ENOENT")) throw err;
      }
    }
  } finally {
    handle.closeSync();
  }
  return removed;
}
