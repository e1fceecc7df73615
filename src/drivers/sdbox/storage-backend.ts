import { nextUidValidity } from "../dbox/uidvalidity.js";
import { createDboxMailboxDir, deleteDboxMailboxDir, listDboxMailboxes, renameDboxMailboxDir } from "../dbox/mailbox-tree.js";
import { DboxLayout, type DboxRoots } from "../dbox/layout.js";
import type { MailboxBackend, StorageBackend, SubscriptionsLocation } from "../driver.js";
import { SdboxMailboxBackend } from "./mailbox-backend.js";
import { rebuildSdboxMailbox, type SdboxRebuildResult } from "./rebuild.js";
import { altMoveSdbox } from "./altmove.js";
import * as fs from "node:fs";
import * as path from "node:path";
import { makeDirs } from "../../shared/make-dirs.js";

/** An sdbox storage: `sdbox:<root>[:ALT=<alt>][:INDEX=<index>]` (paths in layout.ts). */
export class SdboxStorageBackend implements StorageBackend {
  readonly format = "sdbox" as const;
  readonly layout: DboxLayout;

  /**
   * @param fsyncFiles fdatasync new u.N files and fsync their directory (default true).
   * @throws MailstoreError UNSUPPORTED for `INDEX=MEMORY`.
   */
  constructor(readonly root: string, roots: DboxRoots = {}, private readonly fsyncFiles = true) {
    this.layout = new DboxLayout(root, roots);
    makeDirs(root, { newRoot: true });
  }

  async listMailboxes(): Promise<string[]> {
    return listDboxMailboxes(this.root);
  }

  async mailboxExists(name: string): Promise<boolean> {
    return fs.existsSync(this.layout.mailDir(name));
  }

  async createMailbox(name: string): Promise<void> {
    createDboxMailboxDir(this.layout, name);
  }

  async deleteMailbox(name: string): Promise<void> {
    deleteDboxMailboxDir(this.layout, name);
  }

  async renameMailbox(from: string, to: string): Promise<void> {
    renameDboxMailboxDir(this.layout, from, to);
  }

  nextUidValidity(): Promise<number> {
    return nextUidValidity(this.root);
  }

  openMailbox(name: string): MailboxBackend {
    return new SdboxMailboxBackend(this.layout, name, this.fsyncFiles);
  }

  /** subscriptions stays in the mail root with INDEX=; dovecot.mailbox.log goes to the index root (as doveadm). */
  subscriptionsLocation(): SubscriptionsLocation {
    return { file: path.join(this.root, "subscriptions"), mailboxLogDir: this.layout.indexRootDir, separator: "/", utf8: false };
  }

  /** Moves messages to the ALT storage (or back), logging the BACKEND flag. */
  async altMove(mailbox: string, uids: readonly number[], toAlt: boolean): Promise<number[]> {
    return altMoveSdbox(this.layout, mailbox, uids, toAlt);
  }

  /** Rebuilds indexes from the u.N files ("*" = every mailbox), as doveadm force-resync. */
  async forceResync(mailbox: string): Promise<SdboxRebuildResult[]> {
    const names = mailbox === "*" ? await this.listMailboxes() : [mailbox];
    const results = [];
    for (const name of names) results.push(await rebuildSdboxMailbox(this.layout, name, () => this.nextUidValidity()));
    return results;
  }

  async close(): Promise<void> {}
}
