/**
 * One Maildir mailbox as the engine's MailboxBackend: files in new/ and
 * cur/, UIDs in dovecot-uidlist, keyword letters in dovecot-keywords, the
 * index (dovecot.index*) in the mailbox's index directory.
 *
 * Flag and keyword changes made through the engine are internal log records
 * (MailboxTransaction), which the index shows at once; the file names follow
 * at the next sync (`syncExternalChanges`, run by Mailbox.refresh()), which
 * renames the files and moves the log's tail offset — or at Dovecot's next
 * sync, which does the same with the same records.
 */
import * as path from "node:path";
import { EXT_ID_BY_NAME, EXT_INTRO_FLAG_NO_SHRINK, type LogRecord } from "../../log/types.js";
import { withInitialTail } from "../../projections/tail-offset.js";
import type { IndexMapState } from "../../projections/state.js";
import { generateGuid128, guid128ToString } from "../dbox/guid.js";
import type { FileSyncResult, MailboxBackend, MailboxHeaderUpdate, NewMessage, PreparedSave, StoredMessageInfo } from "../driver.js";
import { MaildirContext, type MaildirSettings } from "./context.js";
import { expungeMaildirMessages } from "./expunge.js";
import { MAILDIR_SUBDIRS } from "./folders.js";
import { MAILDIR_EXT_NAME, MAILDIR_HDR_SIZE } from "./index-header.js";
import { maildirHasUnindexedChanges } from "./unindexed.js";
import { maildirMessageInfo, readMaildirMessage } from "./message-files.js";
import { saveMaildirMessages } from "./save.js";
import { updateMaildirUidlist } from "./update.js";
import { syncMaildir, type MaildirSyncOptions } from "./sync.js";
import { makeDirs } from "../../shared/make-dirs.js";

/** Where a mailbox's files are (see MaildirLayout). */
export interface MaildirMailboxPaths {
  readonly mailDir: string;
  readonly indexDir: string;
  readonly controlDir: string;
}

export class MaildirMailboxBackend implements MailboxBackend {
  readonly indexPrefix: string;
  /** Dovecot keeps no dovecot.index.backup for Maildir (the files can always be rescanned). */
  readonly keepsIndexBackup = false;
  readonly ctx: MaildirContext;

  constructor(name: string, paths: MaildirMailboxPaths, settings: MaildirSettings, nextUidValidity: () => Promise<number>) {
    this.indexPrefix = path.join(paths.indexDir, "dovecot.index");
    this.ctx = new MaildirContext(name, paths.mailDir, paths.controlDir, this.indexPrefix, settings, nextUidValidity);
  }

  /**
   * The records a new log starts with: the `maildir` extension, the
   * UIDVALIDITY — dovecot-uidlist's when it exists (it is the UID source;
   * files may already have UIDs), else `uidValidity`, written into a new
   * uidlist — and a tail offset at the end of these records, so the first
   * sync has no history to look through.
   */
  initialRecords(uidValidity: number): LogRecord[] {
    for (const sub of MAILDIR_SUBDIRS) makeDirs(path.join(this.ctx.mailDir, sub));
    makeDirs(path.dirname(this.indexPrefix));
    makeDirs(this.ctx.controlDir);
    const list = this.ctx.uidlist.read()
      ?? this.ctx.uidlist.create({ version: 3, uidValidity, nextUid: 1, guid: guid128ToString(generateGuid128()), extensions: [] });
    const validity = new Uint8Array(4);
    new DataView(validity.buffer).setUint32(0, list.header.uidValidity, true);
    const records: LogRecord[] = [
      {
        type: "ext-intro", external: true, sync: false,
        intros: [{ extId: EXT_ID_BY_NAME, resetId: 0, hdrSize: MAILDIR_HDR_SIZE, recordSize: 0, recordAlign: 0, flags: EXT_INTRO_FLAG_NO_SHRINK, name: MAILDIR_EXT_NAME }],
      },
      { type: "header-update", external: true, sync: false, patches: [{ offset: 24, data: validity }] },
    ];
    return withInitialTail(records);
  }

  /**
   * Commits take the uidlist lock before the log lock, in Dovecot's order,
   * so a save never waits for Dovecot while holding what Dovecot waits for.
   */
  withCommitLocks<T>(fn: () => Promise<T>): Promise<T> {
    return this.ctx.withUidlistLock(this.ctx.settings.saveLockTimeoutMs ?? 10_000, fn);
  }

  saveMessages(state: IndexMapState, messages: readonly NewMessage[], uids: readonly number[]): Promise<PreparedSave> {
    return saveMaildirMessages(this.ctx, state, messages, uids);
  }

  /** dovecot-uidlist's V and N follow the index header (update.ts). */
  updateMailbox(state: IndexMapState, update: MailboxHeaderUpdate): Promise<LogRecord[]> {
    return updateMaildirUidlist(this.ctx, state, update);
  }

  expungeMessages(state: IndexMapState, uids: readonly number[]): Promise<LogRecord[]> {
    return expungeMaildirMessages(this.ctx, state, uids);
  }

  async readMessage(_state: IndexMapState, uid: number): Promise<Uint8Array> {
    return readMaildirMessage(this.ctx, uid);
  }

  async messageInfo(_state: IndexMapState, uid: number): Promise<StoredMessageInfo> {
    return maildirMessageInfo(this.ctx, uid);
  }

  /**
   * Files renamed, delivered or deleted by others become EXTERNAL log
   * records; the engine's own pending flag changes are applied to the file
   * names. Cheap when nothing changed (two stat()s); `force` (force-resync)
   * reads both directories whatever their mtimes say.
   */
  mailFilePaths(): string[] {
    return [path.join(this.ctx.mailDir, "new"), path.join(this.ctx.mailDir, "cur")];
  }

  syncExternalChanges(state: IndexMapState, opts: MaildirSyncOptions): Promise<FileSyncResult> {
    return syncMaildir(this.ctx, state, opts);
  }

  /** See unindexed.ts: no write, and two stat()s when nothing moved. */
  filesChangedSinceSync(state: IndexMapState): boolean {
    return maildirHasUnindexedChanges(this.ctx, state);
  }

  /** dovecot-uidlist's `G` (the index does not hold it; a sync writes it when missing). */
  mailboxGuid(_state: IndexMapState): string | undefined {
    return this.ctx.uidlist.read()?.header.guid?.toLowerCase();
  }

  async close(): Promise<void> {
    this.ctx.close();
  }
}
