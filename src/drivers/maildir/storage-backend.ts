/**
 * A Maildir storage: `maildir:<root>[:INBOX=<dir>][:INDEX=<dir>][:CONTROL=<dir>][:LAYOUT=fs]`.
 * INBOX is the root itself (unless INBOX= says otherwise); other mailboxes
 * are Maildir++ folders `.A.B` for "A/B" (or `A/B` with LAYOUT=fs).
 */
import * as path from "node:path";
import { isInboxName, MAILDIR_SEPARATOR } from "./folders.js";
import { nextUidValidity } from "../dbox/uidvalidity.js";
import type { MailboxBackend, StorageBackend, SubscriptionsLocation } from "../driver.js";
import type { MaildirSettings } from "./context.js";
import { MaildirLayout, type MaildirLocationOptions } from "./layout.js";
import { MaildirMailboxBackend } from "./mailbox-backend.js";
import { resyncStorage, type FilesResyncResult } from "../files-resync.js";
import { createMaildirMailbox, deleteMaildirMailbox, listMaildirMailboxes, maildirMailboxExists, renameMaildirMailbox } from "./mailbox-tree.js";

/** Location parts (INBOX=, INDEX=, CONTROL=, LAYOUT=, UTF-8) and driver settings. */
export interface MaildirStorageOptions extends MaildirLocationOptions, MaildirSettings {}

export class MaildirStorageBackend implements StorageBackend {
  readonly format = "maildir" as const;
  readonly layout: MaildirLayout;

  /**
   * @param root the Maildir root (INBOX's Maildir unless `opts.inbox`).
   * @throws MailstoreError (UNSUPPORTED) for LAYOUT=index or in-memory indexes.
   */
  constructor(readonly root: string, private readonly opts: MaildirStorageOptions = {}) {
    this.layout = new MaildirLayout(root, opts);
  }

  async listMailboxes(): Promise<string[]> {
    return listMaildirMailboxes(this.layout);
  }

  async mailboxExists(name: string): Promise<boolean> {
    return maildirMailboxExists(this.layout, name);
  }

  async createMailbox(name: string): Promise<void> {
    createMaildirMailbox(this.layout, name);
  }

  async deleteMailbox(name: string): Promise<void> {
    deleteMaildirMailbox(this.layout, name);
  }

  async renameMailbox(from: string, to: string): Promise<void> {
    renameMaildirMailbox(this.layout, from, to);
  }

  /** From `dovecot-uidvalidity` in the root (or the CONTROL= root), shared with Dovecot. */
  nextUidValidity(): Promise<number> {
    return nextUidValidity(this.layout.uidValidityDir);
  }

  openMailbox(name: string): MailboxBackend {
    const n = isInboxName(name) ? "INBOX" : name;
    const paths = { mailDir: this.layout.mailDir(n), indexDir: this.layout.indexDir(n), controlDir: this.layout.controlDir(n) };
    return new MaildirMailboxBackend(n, paths, this.opts, () => this.nextUidValidity());
  }

  /** `subscriptions` in the CONTROL= root (else the root); dovecot.mailbox.log in the INDEX= root (else the root). */
  subscriptionsLocation(): SubscriptionsLocation {
    return {
      file: path.join(this.opts.control ?? this.root, "subscriptions"),
      mailboxLogDir: this.opts.index ?? this.root,
      separator: this.layout.fsLayout ? "/" : MAILDIR_SEPARATOR,
      utf8: this.layout.utf8,
    };
  }

  /** doveadm force-resync ("*" = every mailbox): new/ and cur/ rescanned in full; see files-resync.ts. */
  forceResync(mailbox: string): Promise<FilesResyncResult[]> {
    return resyncStorage(this, mailbox, (name) => this.openMailbox(name) as MaildirMailboxBackend);
  }

  async close(): Promise<void> {}
}
