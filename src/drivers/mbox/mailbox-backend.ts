/**
 * One mbox mailbox: the mbox file holds the messages and, in its headers,
 * their UIDs and flags (maildir-mbox.md Part B); the index under
 * `.imap/<mailbox>/` is the log of what the engine and Dovecot know.
 *
 * Flag and keyword changes are logged as requests (internal records) by the
 * transaction, then written into Status/X-Status/X-Keywords by the next
 * sync — refresh() runs it — as Dovecot's sync does; saves append to the file
 * before the log records them; expunges rewrite the file (rewrite.ts) and
 * log EXTERNAL expunges. Changes made by other programs (an MDA appending,
 * a client deleting) are found by comparing the file with the `mbox` index
 * header, which costs one stat() when nothing changed.
 *
 * Lock order caveat: Mailbox calls these methods holding the log lock, so
 * the mbox lock is taken second, while Dovecot takes the mbox lock first. A
 * Dovecot process syncing the same mailbox at the same moment can make us
 * wait; the wait is bounded (`lockTimeoutMs`) and ends in LockTimeoutError,
 * which releases the log lock so that Dovecot finishes.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { MailstoreError } from "../../errors.js";
import { encodeTransaction } from "../../log/encode-file.js";
import { type LogRecord } from "../../log/types.js";
import { getHeader, position } from "../../projections/read.js";
import type { IndexMapState } from "../../projections/state.js";
import type { MailboxBackend, NewMessage, PreparedSave, StoredMessageInfo } from "../driver.js";
import { headerBlock } from "./file-messages.js";
import { mboxHeaderMd5, md5Hex } from "./header-md5.js";
import { mboxHeaderRecords, newMboxSyncHeader } from "./index-ext.js";
import { pendingChanges, type IndexedMessage } from "./index-view.js";
import { openMboxFile, releaseMboxFile, type MboxFile, type WriteHold } from "./mbox-file.js";
import { locateMessage } from "./read.js";
import { saveToMbox } from "./save.js";
import { scanMbox } from "./scan.js";
import { FileSource } from "./source.js";
import { fileMatchesIndex, fileSyncStamp, fullSync, quickSync } from "./sync.js";
import { mboxMessageText, visibleHeaderRanges } from "./text.js";

export interface MboxMailboxOptions {
  /** How long to wait for another process's mbox lock (ms). */
  lockTimeoutMs?: number;
}

/** Size of the tail-offset HEADER_UPDATE: record header 8 + patch header 4 + u32. */
const TAIL_RECORD_SIZE = 16;
/** offsetof(struct mail_index_header, log_file_tail_offset). */
const TAIL_OFFSET_FIELD = 64;
/** Default wait for the mbox locks (Dovecot waits up to mbox_lock_timeout, 5 min; see the lock order caveat). */
const DEFAULT_LOCK_TIMEOUT_MS = 60_000;

/** See the module comment. */
export class MboxMailboxBackend implements MailboxBackend {
  readonly indexPrefix: string;
  readonly keepsIndexBackup = false;
  private readonly file: MboxFile;
  private readonly lockTimeoutMs: number;
  /** The write hold of a save, kept until its transaction commits or rolls back. */
  private saveHold: WriteHold | undefined;
  private saved: IndexedMessage[] = [];
  private closed = false;

  constructor(readonly mboxPath: string, readonly indexDir: string, opts: MboxMailboxOptions = {}) {
    this.indexPrefix = path.join(indexDir, "dovecot.index");
    this.file = openMboxFile(mboxPath);
    this.lockTimeoutMs = opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  }

  /**
   * The `mbox` extension with a fresh mailbox GUID, and UIDVALIDITY — the
   * file's own when its first message has X-IMAPbase (Dovecot resets an
   * index whose UIDVALIDITY disagrees with the file's).
   */
  initialRecords(uidValidity: number): LogRecord[] {
    const fileValidity = this.fileUidValidity();
    const validity = new Uint8Array(4);
    new DataView(validity.buffer).setUint32(0, fileValidity ?? uidValidity, true);
    return [...mboxHeaderRecords(newMboxSyncHeader()), { type: "header-update", external: true, sync: false, patches: [{ offset: 24, data: validity }] }];
  }

  async saveMessages(state: IndexMapState, messages: readonly NewMessage[], firstUid: number): Promise<PreparedSave> {
    const hold = this.saveHold ?? (await this.file.beginWrite({ timeoutMs: this.lockTimeoutMs }));
    this.saveHold = hold;
    let outcome;
    try {
      outcome = await saveToMbox(hold, state, messages, firstUid);
    } catch (err) {
      await this.endSave();
      throw err;
    }
    this.saved.push(...outcome.saved);
    const undo = outcome.undo;
    return {
      records: outcome.records,
      commit: () => this.endSave(),
      rollback: async () => {
        try {
          if (this.saveHold) undo();
        } finally {
          await this.endSave();
        }
      },
    };
  }

  async expungeMessages(state: IndexMapState, uids: readonly number[]): Promise<LogRecord[]> {
    return this.withHold(async (hold) => {
      const pending = pendingChanges(this.indexPrefix, state);
      return fullSync(hold, state, pending, { expunge: new Set(uids), extraIndexed: this.saved });
    });
  }

  async readMessage(state: IndexMapState, uid: number): Promise<Uint8Array> {
    return this.readLocked((fd) => {
      const { src, msg } = locateMessage(fd, this.mboxPath, state, uid);
      return mboxMessageText(src, msg);
    });
  }

  /** GUID: the header MD5 in hex, as `doveadm fetch guid` shows for mbox; received time: the From_ line's. */
  async messageInfo(state: IndexMapState, uid: number): Promise<StoredMessageInfo> {
    return this.readLocked((fd) => {
      const { src, msg } = locateMessage(fd, this.mboxPath, state, uid);
      const visible = visibleHeaderRanges(src, msg).reduce((n, [a, b]) => n + (b - a), 0);
      return {
        guid: md5Hex(mboxHeaderMd5(headerBlock(src, msg))),
        physicalSize: visible + (msg.endOffset - msg.headerEndOffset),
        receivedTime: msg.receivedTime,
        savedTime: msg.receivedTime,
      };
    });
  }

  /**
   * Logs what changed in the file since the index last saw it, and writes
   * pending flag/keyword changes into the headers. Nothing is read but a
   * stat() when the file matches the `mbox` header and no request is pending.
   */
  async syncExternalChanges(state: IndexMapState): Promise<LogRecord[][]> {
    let stamp;
    try {
      stamp = fileSyncStamp0(this.mboxPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new MailstoreError("NOT_FOUND", "mbox file does not exist", { path: this.mboxPath });
      throw err;
    }
    const tailLags = getHeader(state).logFileTailOffset < position(state).offset;
    if (fileMatchesIndex(state, stamp) && !tailLags) return [];
    const records = await this.withHold(async (hold) => {
      const pending = pendingChanges(this.indexPrefix, state);
      const inSync = fileMatchesIndex(state, fileSyncStamp(hold.fd));
      if (inSync && !pending.any) return [];
      return (inSync ? quickSync(hold, state, pending) : undefined) ?? (await fullSync(hold, state, pending));
    });
    return withTailOffset(records.length > 0 ? [records] : [], position(state).offset);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.endSave();
    releaseMboxFile(this.file);
  }

  private async withHold<T>(fn: (hold: WriteHold) => Promise<T>): Promise<T> {
    if (this.saveHold) return fn(this.saveHold);
    const hold = await this.file.beginWrite({ timeoutMs: this.lockTimeoutMs });
    try {
      return await fn(hold);
    } finally {
      await hold.end();
    }
  }

  /** Reads under the read lock — or under our own write hold while a save is open. */
  private readLocked<T>(fn: (fd: number) => T): Promise<T> {
    if (this.saveHold) return Promise.resolve(fn(this.saveHold.fd));
    return this.file.read({ timeoutMs: this.lockTimeoutMs }, fn);
  }

  private async endSave(): Promise<void> {
    const hold = this.saveHold;
    this.saveHold = undefined;
    this.saved = [];
    await hold?.end();
  }

  private fileUidValidity(): number | undefined {
    let fd: number;
    try {
      fd = fs.openSync(this.mboxPath, "r");
    } catch {
      return undefined;
    }
    try {
      const first = scanMbox(new FileSource(fd)).next();
      return first.done ? undefined : first.value.imapBase?.uidValidity;
    } catch {
      return undefined;
    } finally {
      fs.closeSync(fd);
    }
  }
}

function fileSyncStamp0(p: string): { size: number; mtimeSecs: number } {
  const st = fs.statSync(p);
  return { size: st.size, mtimeSecs: Math.floor(st.mtimeMs / 1000) };
}

/**
 * Ends a sync the way Dovecot's syncing transactions end: an EXTERNAL
 * HEADER_UPDATE of log_file_tail_offset pointing just past itself, telling
 * every reader that the internal changes before it reached the mbox.
 * `start` is where the transactions will be written (the log's end: the
 * state is caught up under the log lock).
 */
function withTailOffset(transactions: LogRecord[][], start: number): LogRecord[][] {
  const size = transactions.reduce((n, t) => n + encodeTransaction(t).length, 0);
  const tail = new Uint8Array(4);
  new DataView(tail.buffer).setUint32(0, start + size + TAIL_RECORD_SIZE, true);
  return [...transactions, [{ type: "header-update", external: true, sync: false, patches: [{ offset: TAIL_OFFSET_FIELD, data: tail }] }]];
}
