import * as fs from "node:fs";
import * as path from "node:path";
import { MailstoreError } from "../../shared/errors.js";
import { nextUidValidity } from "../dbox/uidvalidity.js";
import type { MailboxBackend, StorageBackend, SubscriptionsLocation } from "../driver.js";
import { MboxMailboxBackend, type MboxMailboxOptions } from "./mailbox-backend.js";
import { resyncStorage, type FilesResyncResult } from "../files-resync.js";
import {
  createMboxMailbox,
  deleteMboxMailbox,
  listMboxMailboxes,
  MBOX_INDEX_DIR,
  mboxFilePath,
  mboxIndexDir,
  renameMboxMailbox,
  type MboxTree,
} from "./mailbox-tree.js";
import { makeDirs, makeDirsFor } from "../../shared/make-dirs.js";

export interface MboxStorageOptions {
  /** The INBOX file (`INBOX=`); default `<root>/inbox`. */
  inbox?: string;
  /** Index root (`INDEX=`); default the mail root. "" (in-memory indexes) is not supported. */
  index?: string;
  /** Lock waits and rewrite window; see MboxMailboxOptions. */
  mailbox?: MboxMailboxOptions;
}

/**
 * An mbox storage: `mbox:<root>[:INBOX=<file>][:INDEX=<dir>]` — folders are
 * files under the root, subfolders directories, INBOX possibly elsewhere,
 * indexes in `.imap/<mailbox>/` (mailbox-tree.ts).
 */
export class MboxStorageBackend implements StorageBackend {
  readonly format = "mbox" as const;
  private readonly tree: MboxTree;

  constructor(readonly root: string, private readonly opts: MboxStorageOptions = {}) {
    if (opts.index === "") throw new MailstoreError("UNSUPPORTED", "in-memory indexes (INDEX=MEMORY) are not supported");
    this.tree = { root, inbox: opts.inbox ?? path.join(root, "inbox"), indexRoot: opts.index ?? root };
    makeDirs(root, { newRoot: true });
  }

  /** The INBOX file. */
  get inbox(): string {
    return this.tree.inbox;
  }

  async listMailboxes(): Promise<string[]> {
    return listMboxMailboxes(this.tree);
  }

  async mailboxExists(name: string): Promise<boolean> {
    try {
      return fs.statSync(mboxFilePath(this.tree, name)).isFile();
    } catch (err) {
      // No such file (ENOENT; ENOTDIR below a mailbox file), or a name the mbox layout
      // cannot give a file (INVALID_ARGUMENT): no such mailbox.
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") return false;
      if (err instanceof MailstoreError && err.code === "INVALID_ARGUMENT") return false;
      throw err;
    }
  }

  async createMailbox(name: string): Promise<void> {
    createMboxMailbox(this.tree, name);
  }

  async deleteMailbox(name: string): Promise<void> {
    deleteMboxMailbox(this.tree, name);
  }

  async renameMailbox(from: string, to: string): Promise<void> {
    renameMboxMailbox(this.tree, from, to);
  }

  /** From `<root>/.imap/dovecot-uidvalidity`, where Dovecot keeps it for mbox. */
  async nextUidValidity(): Promise<number> {
    const dir = path.join(this.root, MBOX_INDEX_DIR);
    makeDirs(dir);
    return nextUidValidity(dir);
  }

  openMailbox(name: string): MailboxBackend {
    const indexDir = mboxIndexDir(this.tree, name);
    const file = mboxFilePath(this.tree, name);
    makeDirsFor(indexDir, file);
    return new MboxMailboxBackend(file, indexDir, this.opts.mailbox);
  }

  /** `.subscriptions` in the mail root (also with INDEX=); dovecot.mailbox.log in the index root's `.imap`. */
  subscriptionsLocation(): SubscriptionsLocation {
    return { file: path.join(this.root, ".subscriptions"), mailboxLogDir: path.join(this.tree.indexRoot, MBOX_INDEX_DIR), separator: "/", utf8: false };
  }

  /** doveadm force-resync ("*" = every mailbox): the whole mbox file read and synced; see files-resync.ts. */
  forceResync(mailbox: string): Promise<FilesResyncResult[]> {
    return resyncStorage(this, mailbox, (name) => this.openMailbox(name) as MboxMailboxBackend);
  }

  async close(): Promise<void> {}
}
