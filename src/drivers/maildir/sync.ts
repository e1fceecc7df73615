/**
 * Maildir index sync (Dovecot's maildir-sync.c + maildir-sync-index.c):
 * brings the log in line with the files and the files in line with the log.
 *
 * 1. Quick check: nothing to do when new/ and cur/ have the mtimes the
 *    `maildir` index header recorded (see index-header.ts), the log's tail
 *    is at its head, and no message is DIRTY. Two stat()s and no log write.
 * 2. With the uidlist lock: read (or reuse) the directory listings, then
 *    walk the index and dovecot-uidlist side by side in UID order:
 *    - requested changes not yet on disk (internal records after the tail,
 *      pending-changes.ts) are applied to the file's current flags and the
 *      file renamed; requested expunges unlink the file;
 *    - a file whose name says other flags/keywords than the index → EXTERNAL
 *      flag / keyword updates (someone renamed it);
 *    - a message whose file is gone → EXTERNAL expunge;
 *    - a file without a uidlist record (or only a record beyond the index's
 *      next_uid, left by a crash) → a new UID in dovecot-uidlist, then an
 *      EXTERNAL append.
 * 3. dovecot-uidlist (and dovecot-keywords) are written before the caller
 *    appends the records, so a crash in between leaves files with UIDs that
 *    the next sync logs, never logged messages without a file.
 *
 * Returns the transactions to append: the sync records and, when the log
 * had internal records the files had not seen, the tail-offset update.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LockTimeoutError } from "../../shared/errors.js";
import type { ExternalSyncOptions, FileSyncResult } from "../driver.js";
import type { IndexMapState } from "../../projections/state.js";
import type { MaildirContext } from "./context.js";
import { statDirStamp } from "./dir-scan.js";
import { maildirDirsChanged, maildirHeaderChanged, maildirHeaderOf, stampOf, type MaildirIndexHeader } from "./index-header.js";
import { hasUnsyncedTail, pendingChangesOf, readPendingChanges, type PendingChanges } from "./pending-changes.js";
import { reconcileMessages } from "./sync-messages.js";
import { outcomeIsEmpty, syncRecords, type SyncOutcome } from "./sync-records.js";
import { openUidlist } from "./uidlist-open.js";

/** Options of syncMaildir(): see ExternalSyncOptions (`force` reads new/ and cur/ whatever their mtimes say). */
export type MaildirSyncOptions = ExternalSyncOptions;

/**
 * Syncs the mailbox's files and log (see the module comment). Called with
 * the log lock held and `state` at the end of the log. Also deletes stale
 * files from tmp/ now and then (context.ts maybeCleanupTmp).
 * @returns the transactions to append ([] when nothing changed) and whether
 *   the files now hold everything in the log (not when another process
 *   holds the uidlist lock: it is syncing and will log).
 */
export async function syncMaildir(ctx: MaildirContext, state: IndexMapState, opts: MaildirSyncOptions): Promise<FileSyncResult> {
  const nowSecs = Math.floor(Date.now() / 1000);
  ctx.maybeCleanupTmp(nowSecs);
  const head = { sameFile: opts.logHead.fileSeq === state.header.logFileSeq, offset: opts.logHead.offset };
  const tailBehind = !head.sameFile || hasUnsyncedTail(state);
  const hdr = maildirHeaderOf(state);
  let full: boolean;
  if (opts.force) {
    ctx.files.reset();
    full = true;
  } else {
    const changed = maildirDirsChanged(hdr, statDirStamp(path.join(ctx.mailDir, "new")), statDirStamp(path.join(ctx.mailDir, "cur")), nowSecs);
    full = changed.newChanged || changed.curChanged;
  }
  const needsWork = full || tailBehind || state.dirtyCount > 0 || state.header.uidValidity === 0;
  if (!needsWork) return SYNCED_NOTHING;
  const pending: PendingChanges = !head.sameFile
    ? new Map()
    : opts.unsyncedEffects ? pendingChangesOf(state, opts.unsyncedEffects) : readPendingChanges(ctx.indexPrefix, state);
  if (!full && pending.size === 0 && state.dirtyCount === 0 && state.header.uidValidity !== 0) {
    // Only the tail is behind (internal records that touch no file): move it.
    return SYNCED_NOTHING;
  }
  let outcome: SyncOutcome;
  try {
    outcome = await ctx.withUidlistLock(ctx.settings.syncLockTimeoutMs ?? 1_000, () => runSync(ctx, state, { full, pending, hdr }));
  } catch (err) {
    // Someone else (Dovecot) is syncing these files right now and will log what it finds.
    if (err instanceof LockTimeoutError) return { transactions: [], filesSynced: false };
    throw err;
  }
  const records = outcomeIsEmpty(outcome) ? [] : syncRecords(state, outcome);
  return { transactions: records.length > 0 ? [records] : [], filesSynced: true };
}

/** The files needed nothing: the writer only moves the tail if it lags. */
const SYNCED_NOTHING: FileSyncResult = { transactions: [], filesSynced: true };

interface SyncRequest {
  /** new/ or cur/ changed: compare every file (otherwise only pending and DIRTY messages). */
  readonly full: boolean;
  readonly pending: PendingChanges;
  readonly hdr: MaildirIndexHeader;
}

async function runSync(ctx: MaildirContext, state: IndexMapState, req: SyncRequest): Promise<SyncOutcome> {
  const uidlist = await openUidlist(ctx, state);
  const scan = ctx.files.scan();
  const timeBeforeSync = Math.floor(Date.now() / 1000);
  const outcome = await reconcileMessages(ctx, state, uidlist, { full: req.full, pending: req.pending, strays: ctx.files.strays() });
  if (state.header.uidValidity === 0) outcome.uidValidity = uidlist.header.uidValidity;
  // Dovecot's maildir_sync_index_update_ext_header(): the listings the index now
  // matches, then cur/ stat()ed again (our renames moved its mtime) with a check
  // time from before the walk but no earlier than that mtime, so that a change
  // made in the same second is rescanned once the second is over.
  const cur = stampOf(fs.statSync(path.join(ctx.mailDir, "cur"), { bigint: true }));
  const list = fs.statSync(ctx.uidlist.path, { bigint: true });
  const listStamp = stampOf(list);
  const next: MaildirIndexHeader = {
    newCheckTime: req.full ? scan.newCheckTime : req.hdr.newCheckTime,
    newMtime: req.full ? scan.newStamp.mtime : req.hdr.newMtime,
    newMtimeNsecs: req.full ? scan.newStamp.mtimeNsecs : req.hdr.newMtimeNsecs,
    curCheckTime: Math.max(timeBeforeSync, cur.mtime),
    curMtime: cur.mtime,
    curMtimeNsecs: cur.mtimeNsecs,
    uidlistMtime: listStamp.mtime,
    uidlistMtimeNsecs: listStamp.mtimeNsecs,
    uidlistSize: Number(list.size),
  };
  if (req.hdr.newMtime === 0 || maildirHeaderChanged(req.hdr, next)) outcome.header = next;
  return outcome;
}
