import * as fs from "node:fs";
import * as path from "node:path";
import { MailstoreError } from "../../shared/errors.js";
import { EXT_ID_BY_NAME, type LogRecord } from "../../log/types.js";
import { extension, extensionHeader } from "../../projections/read.js";
import type { IndexMapState } from "../../projections/state.js";
import { encodeDboxFile, decodeSdboxFile } from "../dbox/file-format.js";
import { createDboxTempFile, publishDboxTempFile, sdboxFileName } from "../dbox/files.js";
import { generateGuid128, generateMessageGuid, guid128StringUnlessEmpty } from "../dbox/guid.js";
import { toLfLineEndings, virtualSizeOf } from "../dbox/message-body.js";
import { buildDboxMetadata, readDboxMetadata } from "../dbox/metadata.js";
import type { MailboxBackend, NewMessage, PreparedSave, StoredMessageInfo } from "../driver.js";
import { fsyncDir } from "../../shared/fsync-dir.js";
import type { DboxLayout } from "../dbox/layout.js";

/** Size of the `dbox-hdr` extension header (dbox.md §3). */
const DBOX_HDR_SIZE = 24;

/**
 * One sdbox mailbox: one `u.<uid>` file per message in `dbox-Mails`, with the
 * ALT directory searched when a file is not in the primary one.
 */
export class SdboxMailboxBackend implements MailboxBackend {
  readonly indexPrefix: string;
  readonly keepsIndexBackup = true;
  /** The mailbox's dbox-Mails directory. */
  readonly dir: string;
  readonly altDir: string | undefined;

  constructor(private readonly layout: DboxLayout, name: string, private readonly fsyncFiles = true) {
    this.dir = layout.mailDir(name);
    this.altDir = layout.altDir(name);
    this.indexPrefix = layout.indexPrefix(name);
  }

  /** With INDEX=, a mailbox made before its index directory (or whose index tree was removed) gets it here. */
  initialRecords(uidValidity: number): LogRecord[] {
    this.layout.makeIndexDirs(path.dirname(this.indexPrefix));
    const hdr = new Uint8Array(DBOX_HDR_SIZE);
    hdr.set(generateGuid128(), 4); // mailbox GUID; rebuild_count 0
    const validity = new Uint8Array(4);
    new DataView(validity.buffer).setUint32(0, uidValidity, true);
    return [
      { type: "ext-intro", external: false, sync: false, intros: [{ extId: EXT_ID_BY_NAME, resetId: 0, hdrSize: DBOX_HDR_SIZE, recordSize: 0, recordAlign: 0, flags: 0, name: "dbox-hdr" }] },
      { type: "ext-hdr", external: false, sync: false, patches: [{ offset: 0, data: hdr }] },
      { type: "header-update", external: true, sync: false, patches: [{ offset: 24, data: validity }] },
    ];
  }

  /**
   * Files a save killed before its log commit left behind: saves write
   * `u.<uid>` from next_uid on, in order, under the log lock, so outside the
   * lock any such file is a leftover. Dovecot fails its next save on one and
   * rebuilds; here they are logged as the messages they are (EXTERNAL
   * appends, what a rebuild finds) before the next commit, one stat() when
   * there are none. Called under the log lock.
   *
   * Except a copy's: a copy is a hard link (saveMessages), so a leftover
   * with more than one link is a copy whose commit never landed, and its
   * original is still in its mailbox. Adopting it would show the message
   * twice once the copy or move is tried again; it is unlinked instead
   * (the other name keeps the data). A leftover whose original was
   * expunged meanwhile has one link again, and is adopted: then it is the
   * only copy.
   */
  async adoptLeftovers(state: IndexMapState): Promise<LogRecord[][]> {
    const uids: number[] = [];
    for (let uid = state.header.nextUid; uid > 0 && uid < 0xffffffff; uid++) {
      const file = path.join(this.dir, sdboxFileName(uid));
      let links: number;
      try {
        links = fs.statSync(file).nlink;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") break;
        throw err;
      }
      if (links > 1) fs.rmSync(file);
      else uids.push(uid);
    }
    if (uids.length === 0) return [];
    return [[{ type: "append", external: true, sync: false, messages: uids.map((uid) => ({ uid, flags: 0 })) }]];
  }

  /**
   * Writes each message as `u.<uid>` before the log records it: a crash in
   * between leaves a file that Dovecot's (and our) rebuild finds, never a
   * logged message without its file.
   */
  async saveMessages(_state: IndexMapState, messages: readonly NewMessage[], uids: readonly number[]): Promise<PreparedSave> {
    const published: string[] = [];
    let linked = false;
    try {
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i];
        const final = path.join(this.dir, sdboxFileName(uids[i]));
        // A u.N at a UID this save takes (at or past next_uid, under the log lock) is a killed save's
        // leftover that adoptLeftovers did not reach (past a gap of requested UIDs): never logged, replaced.
        fs.rmSync(final, { force: true });
        if (await this.linkCopy(m, final)) {
          published.push(final);
          linked = true;
          continue;
        }
        const body = toLfLineEndings(m.body);
        const metadata = buildDboxMetadata({
          guid: m.guid ?? generateMessageGuid(),
          receivedTime: m.receivedTime ?? Math.floor(Date.now() / 1000),
          virtualSize: virtualSizeOf(body),
        });
        const bytes = encodeDboxFile({ header: { msgHeaderSize: 30, createStamp: Math.floor(Date.now() / 1000), unknownItems: [] }, messages: [{ body, metadata }] });
        const temp = await createDboxTempFile(this.dir, bytes, { syncFile: this.fsyncFiles, syncDir: false });
        await publishDboxTempFile(temp, final, { syncDir: this.fsyncFiles && i === messages.length - 1 && !linked });
        published.push(final);
      }
      if (linked && this.fsyncFiles) fsyncDir(this.dir);
    } catch (err) {
      await Promise.all(published.map((p) => fs.promises.rm(p, { force: true })));
      throw err;
    }
    return {
      records: [],
      commit: async () => undefined,
      rollback: async () => void (await Promise.all(published.map((p) => fs.promises.rm(p, { force: true })))),
    };
  }

  /**
   * A copy of another u.N file of this storage (NewMessage.copyOf, with the
   * same GUID and received time): a hard link, as Dovecot's sdbox copy.
   * The link count then also tells a killed copy's leftover from a killed
   * save's (adoptLeftovers).
   * @returns false when `m` is not one, or the link cannot be made (ALT on
   *   another filesystem, the link limit, the source expunged meanwhile):
   *   then it is written as any message.
   */
  private async linkCopy(m: NewMessage, final: string): Promise<boolean> {
    const src = await this.linkSource(m);
    if (src === undefined || m.guid === undefined || m.guid !== src.guid || (m.receivedTime !== undefined && m.receivedTime !== src.receivedTime)) return false;
    // Only within this storage's primary tree: a file linked in from another store (an import) would
    // carry that store's owner and mode, and tie two stores' files together.
    if (!src.path.startsWith(this.layout.root + path.sep)) return false;
    try {
      fs.linkSync(src.path, final);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EEXIST") throw new MailstoreError("ALREADY_EXISTS", "dbox file already exists", { path: final });
      if (code === "EXDEV" || code === "EMLINK" || code === "EPERM" || code === "ENOENT") return false;
      throw err;
    }
  }

  /** Files of messages whose expunge is being committed: unlinked once it is logged. */
  private expungedFiles: string[] = [];

  async expungeMessages(_state: IndexMapState, uids: readonly number[]): Promise<LogRecord[]> {
    for (const uid of uids) {
      for (const dir of [this.dir, this.altDir]) if (dir) this.expungedFiles.push(path.join(dir, sdboxFileName(uid)));
    }
    // sdbox's EXTERNAL expunges carry zero GUIDs (transaction-log.md §4.3).
    return [{ type: "expunge-guid", external: true, sync: false, expunges: uids.map((uid) => ({ uid, guid: new Uint8Array(16) })) }];
  }

  /**
   * The files go after the log says the messages are expunged: a kill in
   * between leaves a file nothing refers to (which a rebuild would bring
   * back, as after Dovecot's own crash there), never an indexed message
   * without its file.
   */
  async afterCommit(committed: boolean): Promise<void> {
    const files = this.expungedFiles;
    this.expungedFiles = [];
    if (committed) await Promise.all(files.map((f) => fs.promises.rm(f, { force: true })));
  }

  async readMessage(_state: IndexMapState, uid: number): Promise<Uint8Array> {
    return (await this.readFileWithPath(uid)).file.message.body;
  }

  /**
   * The u.N file a copy of an sdbox message (NewMessage.copyOf) can link,
   * with what its metadata says. @returns undefined when `m` is no such
   * copy or its source is gone.
   */
  private async linkSource(m: NewMessage): Promise<{ path: string; guid: string | undefined; receivedTime: number | undefined } | undefined> {
    const origin = m.copyOf;
    if (!(origin?.backend instanceof SdboxMailboxBackend)) return undefined;
    let found;
    try {
      found = await origin.backend.readFileWithPath(origin.uid);
    } catch (err) {
      // Expunged since it was read: the bytes in `m` are written as a new file.
      if (err instanceof MailstoreError && err.code === "NOT_FOUND") return undefined;
      throw err;
    }
    const info = origin.backend.infoOf(found.file, found.filePath);
    return { path: found.filePath, guid: info.guid || undefined, receivedTime: info.receivedTime };
  }

  async messageInfo(_state: IndexMapState, uid: number): Promise<StoredMessageInfo> {
    const { file, filePath } = await this.readFileWithPath(uid);
    return this.infoOf(file, filePath);
  }

  private infoOf(file: ReturnType<typeof decodeSdboxFile>, filePath: string): StoredMessageInfo {
    const meta = readDboxMetadata(file.message.metadata);
    const st = fs.statSync(filePath);
    return {
      guid: meta.guid ?? "",
      physicalSize: file.message.body.length,
      receivedTime: meta.receivedTime ?? Math.floor(st.mtimeMs / 1000),
      savedTime: Math.floor(st.ctimeMs / 1000),
    };
  }

  /** struct sdbox_index_header: rebuild_count u32, mailbox_guid[16], flags u8, unused[3]. */
  mailboxGuid(state: IndexMapState): string | undefined {
    const ext = extension(state, "dbox-hdr");
    const hdr = ext === undefined ? undefined : extensionHeader(ext);
    return hdr === undefined || hdr.length < 20 ? undefined : guid128StringUnlessEmpty(hdr.subarray(4, 20));
  }

  async close(): Promise<void> {}

  /** Primary directory first, then ALT (dbox.md §3). */
  private async readFileWithPath(uid: number) {
    for (const dir of [this.dir, this.altDir]) {
      if (!dir) continue;
      const filePath = path.join(dir, sdboxFileName(uid));
      let bytes: Buffer;
      try {
        // Synchronous: one message's read is a few µs of syscalls, a promise a thread-pool round trip each (see dbox/files.ts readAt).
        bytes = fs.readFileSync(filePath);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
        throw err;
      }
      return { file: decodeSdboxFile(bytes, { path: filePath }), filePath };
    }
    throw new MailstoreError("NOT_FOUND", `message file ${sdboxFileName(uid)} is missing`, { path: path.join(this.dir, sdboxFileName(uid)) });
  }
}
