/**
 * An mdbox storage: `mdbox:<root>[:ALT=<alt>][:INDEX=<index>]`. The mailbox
 * tree is the same as sdbox's (dbox/layout.ts); message data lives in `storage/m.N`, found through the map.
 * Besides the StorageBackend interface this offers the storage-wide
 * operations Dovecot has for mdbox: purge, altmove, access to deleted
 * messages, and rebuild (force-resync).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { MailstoreError } from "../../shared/errors.js";
import { loadState } from "../../index-io/load-state.js";
import { createDboxMailboxDir, deleteDboxMailboxDir, listDboxMailboxes, renameDboxMailboxDir } from "../dbox/mailbox-tree.js";
import { nextUidValidity } from "../dbox/uidvalidity.js";
import type { MailboxBackend, StorageBackend, StorageLogAppend, SubscriptionsLocation } from "../driver.js";
import type { MdboxContext, MdboxSettings } from "./context.js";
import { listDeletedMessages, readDeletedMessage, recoverDeletedMessage, type DeletedMessage } from "./deleted.js";
import { MdboxMailboxBackend } from "./mailbox-backend.js";
import { messageRefs } from "./mailbox-refs.js";
import { writeMailbox } from "./mailbox-writer.js";
import { MdboxMap, type MdboxMapOptions } from "./map.js";
import { MdboxPaths } from "./paths.js";
import { purgeStorage, type PurgeOptions, type PurgeResult } from "./purge.js";
import { rebuildStorage, type RebuildResult } from "./rebuild.js";
import { releaseMapUids } from "./save.js";
import { makeDirs } from "../../shared/make-dirs.js";

/** Settings and lock waits of an mdbox storage. */
export interface MdboxStorageOptions extends MdboxSettings, Pick<MdboxMapOptions, "lockTimeoutMs" | "nestedLockTimeoutMs"> {
  /** `INDEX=`: root of the mailbox indexes and the map index; "" (INDEX=MEMORY) is refused. */
  indexRoot?: string;
}

/** The StorageBackend of `mdbox:<root>[:ALT=<alt>][:INDEX=<index>]`, plus purge, altmove, deleted messages and rebuild. */
export class MdboxStorageBackend implements StorageBackend {
  readonly format = "mdbox" as const;
  readonly paths: MdboxPaths;
  readonly map: MdboxMap;
  /** Live settings: changing rotateSizeBytes affects the next save. */
  readonly settings: MdboxSettings;
  private readonly ctx: MdboxContext;

  /** @throws MailstoreError UNSUPPORTED for `INDEX=MEMORY`. */
  constructor(readonly root: string, readonly altRoot?: string, options: MdboxStorageOptions = {}) {
    this.paths = new MdboxPaths(root, altRoot, options.indexRoot);
    makeDirs(root, { newRoot: true });
    this.settings = { rotateSizeBytes: options.rotateSizeBytes, fsyncFiles: options.fsyncFiles, fsync: options.fsync };
    this.map = new MdboxMap(this.paths, { fsync: options.fsync, lockTimeoutMs: options.lockTimeoutMs, nestedLockTimeoutMs: options.nestedLockTimeoutMs });
    this.ctx = { paths: this.paths, map: this.map, settings: this.settings };
  }

  async listMailboxes(): Promise<string[]> {
    return listDboxMailboxes(this.root);
  }

  async mailboxExists(name: string): Promise<boolean> {
    return fs.existsSync(this.paths.mailDir(name));
  }

  async createMailbox(name: string): Promise<void> {
    createDboxMailboxDir(this.paths, name);
  }

  /**
   * Deletes a mailbox as Dovecot does for mdbox: its messages' refcounts go
   * down first (their data stays until a purge, and can be recovered until
   * then), then the directory goes.
   */
  async deleteMailbox(name: string): Promise<void> {
    const prefix = this.paths.indexPrefix(name);
    if (fs.existsSync(prefix + ".log")) {
      await writeMailbox(prefix, async (state) => {
        const refs = messageRefs(state);
        const mapUids = refs.map((m) => m.mapUid).filter((m) => m !== 0);
        // Lock order as a save's: mailbox, then map (briefly).
        if (mapUids.length > 0) await releaseMapUids(this.ctx, mapUids, { nested: true });
        // The records go with the references, so a crash before the directory is gone leaves both agreeing.
        return refs.length > 0 ? [[{ type: "expunge-guid", external: true, sync: false, expunges: refs.map((m) => ({ uid: m.uid, guid: m.guid128 })) }]] : [];
      }, { fsync: this.settings.fsync });
    }
    deleteDboxMailboxDir(this.paths, name);
  }

  async renameMailbox(from: string, to: string): Promise<void> {
    renameDboxMailboxDir(this.paths, from, to);
  }

  nextUidValidity(): Promise<number> {
    return nextUidValidity(this.root);
  }

  openMailbox(name: string): MailboxBackend {
    return new MdboxMailboxBackend(name, this.ctx);
  }

  subscriptionsLocation(): SubscriptionsLocation {
    return { file: path.join(this.root, "subscriptions"), mailboxLogDir: this.paths.indexRootDir, separator: "/", utf8: false };
  }

  indexLogTail(): Promise<void> {
    return this.map.indexTail();
  }

  /**
   * `doveadm purge`: rewrites every m.N holding refcount-0 messages without
   * them, and deletes the old file. See purge.ts.
   */
  purge(opts: PurgeOptions = {}): Promise<PurgeResult> {
    return purgeStorage(this.ctx, opts);
  }

  /**
   * `doveadm altmove` for single messages: moves the data of `uids` of
   * `mailbox` to ALT storage (or back, with `toAlt` false), also out of an
   * m.N shared with other messages (that file is purged, its other messages
   * staying in their storage). Other mailboxes' records of the same data
   * follow, as they share the map record.
   * @throws MailstoreError UNSUPPORTED without ALT storage; NOT_FOUND for an unknown mailbox.
   */
  async altMove(mailbox: string, uids: readonly number[], toAlt = true): Promise<PurgeResult> {
    if (this.altRoot === undefined) throw new MailstoreError("UNSUPPORTED", "this storage has no ALT location");
    const backend = this.openMailbox(mailbox) as MdboxMailboxBackend;
    const state = loadState(backend.indexPrefix);
    const mapUids = new Set(uids.map((uid) => backend.resolve(state, uid).entry.mapUid));
    return purgeStorage(this.ctx, toAlt ? { moveToAlt: mapUids } : { moveFromAlt: mapUids });
  }

  /** What `fn` (a purge, an altmove) wrote to the map log. */
  collectStorageLog<T>(fn: () => Promise<T>): Promise<{ value: T; appends: StorageLogAppend[] }> {
    return this.map.collectAppends(fn);
  }

  /** Refcount-0 messages still in storage (expunged everywhere, not purged yet). */
  listDeleted(): Promise<DeletedMessage[]> {
    return listDeletedMessages(this.ctx);
  }

  /** The stored bytes of deleted message `mapUid`. */
  readDeleted(mapUid: number): Promise<Uint8Array> {
    return readDeletedMessage(this.ctx, mapUid);
  }

  /**
   * Puts deleted message `mapUid` back, into `mailbox` or the mailbox it was
   * first saved to (metadata `B`), else INBOX. Flags are not kept (the
   * mailbox records that had them are gone).
   */
  recoverDeleted(mapUid: number, mailbox?: string): Promise<{ mailbox: string; uid: number }> {
    return recoverDeletedMessage(this.ctx, mapUid, { mailbox, newUidValidity: () => this.nextUidValidity() });
  }

  /** Storage rebuild from the m.N files; see rebuild.ts. */
  rebuild(): Promise<RebuildResult> {
    return rebuildStorage(this.ctx, { newUidValidity: () => this.nextUidValidity() });
  }

  /**
   * `doveadm force-resync <mailbox>`: for mdbox, Dovecot rebuilds the whole
   * storage whatever mailbox is named (the map is shared), and so do we.
   */
  forceResync(_mailbox = "*"): Promise<RebuildResult> {
    return this.rebuild();
  }

  async close(): Promise<void> {
    await this.map.close();
  }
}
