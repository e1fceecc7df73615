import { nextUidValidity } from "../dbox/uidvalidity.js";
import { createDboxMailboxDir, deleteDboxMailboxDir, listDboxMailboxes, mailboxDir, renameDboxMailboxDir } from "../dbox/mailbox-tree.js";
import type { MailboxBackend, StorageBackend, SubscriptionsLocation } from "../driver.js";
import { SdboxMailboxBackend, sdboxAltDir } from "./mailbox-backend.js";
import { rebuildSdboxMailbox, type SdboxRebuildResult } from "./rebuild.js";
import { altMoveSdbox, requireAlt } from "./altmove.js";
import * as fs from "node:fs";
import * as path from "node:path";
import { makeDirs } from "../../shared/make-dirs.js";

/** An sdbox storage: `sdbox:<root>[:ALT=<alt>]`. */
export class SdboxStorageBackend implements StorageBackend {
  readonly format = "sdbox" as const;

  /** @param fsyncFiles fdatasync new u.N files and fsync their directory (default true). */
  constructor(readonly root: string, readonly altRoot?: string, private readonly fsyncFiles = true) {
    makeDirs(root, { newRoot: true });
  }

  async listMailboxes(): Promise<string[]> {
    return listDboxMailboxes(this.root);
  }

  async mailboxExists(name: string): Promise<boolean> {
    return fs.existsSync(mailboxDir(this.root, name));
  }

  async createMailbox(name: string): Promise<void> {
    createDboxMailboxDir(this.root, name);
  }

  async deleteMailbox(name: string): Promise<void> {
    deleteDboxMailboxDir(this.root, name);
    if (this.altRoot && fs.existsSync(mailboxDir(this.altRoot, name))) deleteDboxMailboxDir(this.altRoot, name);
  }

  async renameMailbox(from: string, to: string): Promise<void> {
    renameDboxMailboxDir(this.root, from, to);
    if (this.altRoot && fs.existsSync(mailboxDir(this.altRoot, from))) renameDboxMailboxDir(this.altRoot, from, to);
  }

  nextUidValidity(): Promise<number> {
    return nextUidValidity(this.root);
  }

  openMailbox(name: string): MailboxBackend {
    const dir = mailboxDir(this.root, name);
    return new SdboxMailboxBackend(dir, sdboxAltDir(dir, this.root, this.altRoot), this.fsyncFiles);
  }

  subscriptionsLocation(): SubscriptionsLocation {
    return { file: path.join(this.root, "subscriptions"), mailboxLogDir: this.root, separator: "/", utf8: false };
  }

  /** Moves messages to the ALT storage (or back), logging the BACKEND flag. */
  async altMove(mailbox: string, uids: readonly number[], toAlt: boolean): Promise<number[]> {
    const dir = mailboxDir(this.root, mailbox);
    return altMoveSdbox(dir, requireAlt(sdboxAltDir(dir, this.root, this.altRoot)), uids, toAlt);
  }

  /** Rebuilds indexes from the u.N files ("*" = every mailbox), as doveadm force-resync. */
  async forceResync(mailbox: string): Promise<SdboxRebuildResult[]> {
    const names = mailbox === "*" ? await this.listMailboxes() : [mailbox];
    const results = [];
    for (const name of names) {
      const dir = mailboxDir(this.root, name);
      results.push(await rebuildSdboxMailbox(dir, sdboxAltDir(dir, this.root, this.altRoot), () => this.nextUidValidity()));
    }
    return results;
  }

  async close(): Promise<void> {}
}
