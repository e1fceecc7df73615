/**
 * The mbox mailbox tree (`mbox:<root>[:INBOX=<file>][:INDEX=<dir>]`, list
 * layout `fs`; maildir-mbox.md B1), checked with doveadm 2.3.19:
 *
 *     <inbox file>                      INBOX (anywhere, e.g. /var/mail/<user>)
 *     <root>/A/B                        mailbox "A/B": a file; "A" is a plain directory
 *     <idx>/.imap/INBOX/dovecot.index*  INBOX's index (<idx> = INDEX= or <root>)
 *     <idx>/A/.imap/B/dovecot.index*    "A/B"'s index: `.imap` beside the mbox file
 *     <root>/.imap/dovecot-uidvalidity  UIDVALIDITY allocation
 *
 * Listing (mbox-list / fs layout): INBOX always exists; every other file is
 * a mailbox, directories are only hierarchy. Dovecot skips `*.lock` files
 * (dotlocks) and its index
 * directory; it does list other dot files, but we skip them all, since they
 * are never mail folders in practice. Names are modified UTF-7 on disk.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { MailstoreError } from "../../shared/errors.js";
import { decodeMutf7, encodeMutf7 } from "../mutf7.js";
import { makeDirs, makeDirsFor } from "../../shared/make-dirs.js";
import { createNewFile, newFilePermissionsIn, ownerToGiveIn, type NewFilePermissions } from "../../shared/file-mode.js";

/** Dovecot's mbox index directory name. */
export const MBOX_INDEX_DIR = ".imap";

/** Where one mbox storage keeps things. */
export interface MboxTree {
  readonly root: string;
  readonly inbox: string;
  /** Root of the index tree (INDEX=, else the mail root). */
  readonly indexRoot: string;
}

function encodedParts(name: string): string[] {
  return name.split("/").map((part) => {
    if (part === "" || part === "." || part === ".." || part.startsWith(".") || part.endsWith(".lock")) {
      throw new MailstoreError("INVALID_ARGUMENT", `invalid mailbox name "${name}"`);
    }
    return encodeMutf7(part);
  });
}

export function isInboxName(name: string): boolean {
  return name.toUpperCase() === "INBOX";
}

/** @returns the mbox file of mailbox `name`. */
export function mboxFilePath(tree: MboxTree, name: string): string {
  if (isInboxName(name)) return tree.inbox;
  return path.join(tree.root, ...encodedParts(name));
}

/** @returns the directory holding `dovecot.index*` of mailbox `name`. */
export function mboxIndexDir(tree: MboxTree, name: string): string {
  if (isInboxName(name)) return path.join(tree.indexRoot, MBOX_INDEX_DIR, "INBOX");
  const parts = encodedParts(name);
  const leaf = parts.pop()!;
  return path.join(tree.indexRoot, ...parts, MBOX_INDEX_DIR, leaf);
}

/** Mailbox names ("/"-separated): INBOX first, then the rest sorted. */
export function listMboxMailboxes(tree: MboxTree): string[] {
  const out: string[] = [];
  const inboxReal = realPathOrSelf(tree.inbox);
  const walk = (dir: string, prefix: string[]) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "EACCES" || code === "ENOTDIR") return;
      throw err;
    }
    for (const e of entries) {
      if (e.name.startsWith(".") || e.name.endsWith(".lock")) continue;
      const full = path.join(dir, e.name);
      let st: fs.Stats;
      try {
        st = fs.statSync(full);
      } catch (err) {
        // Gone since readdir, a dangling or looping symlink, or not ours to see (as the
        // readdir above): not listed.
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT" || code === "EACCES" || code === "ELOOP") continue;
        throw err;
      }
      const name = [...prefix, decodeMutf7(e.name)];
      if (st.isDirectory()) walk(full, name);
      else if (st.isFile()) {
        const joined = name.join("/");
        if (isInboxName(joined) || realPathOrSelf(full) === inboxReal) continue;
        out.push(joined);
      }
    }
  };
  walk(tree.root, []);
  return ["INBOX", ...out.sort()];
}

function realPathOrSelf(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch (err) {
    // Not there (yet): the path as given is all there is to compare.
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return path.resolve(p);
    throw err;
  }
}

/**
 * Creates mailbox `name`: an empty mbox file (parents as directories) and its
 * index directory.
 * @throws MailstoreError ALREADY_EXISTS for an existing mailbox other than INBOX.
 */
export function createMboxMailbox(tree: MboxTree, name: string): void {
  const file = mboxFilePath(tree, name);
  makeDirs(path.dirname(file));
  try {
    fs.closeSync(createNewFile(file, fs.constants.O_WRONLY, mboxFilePermissions(tree, file)));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    if (!isInboxName(name)) throw new MailstoreError("ALREADY_EXISTS", `mailbox ${name} already exists`, { path: file });
  }
  makeDirsFor(mboxIndexDir(tree, name), file);
}

/**
 * The new mbox file's permissions, from its directory; made by root in a
 * root-owned directory (an INBOX in a spool such as Debian's /var/mail,
 * root:mail 2775), its owner is the mail root's: Dovecot, running as that
 * user, must write it. Its group stays the directory's rule's (the kernel's
 * in a set-group-ID spool).
 */
function mboxFilePermissions(tree: MboxTree, file: string): NewFilePermissions {
  const perm = newFilePermissionsIn(path.dirname(file));
  if (perm.owner !== undefined) return perm;
  const owner = ownerToGiveIn(tree.root);
  return owner === undefined ? perm : { ...perm, owner: { uid: owner.uid, gid: perm.gid ?? -1 } };
}

/** Removes the mbox file and its index directory. */
export function deleteMboxMailbox(tree: MboxTree, name: string): void {
  const file = mboxFilePath(tree, name);
  if (!fs.existsSync(file)) throw new MailstoreError("NOT_FOUND", `mailbox ${name} does not exist`, { path: file });
  // A directory there is hierarchy: its mailboxes go first (doveadm's answer too).
  if (fs.statSync(file).isDirectory()) throw new MailstoreError("INVALID_ARGUMENT", `mailbox ${name} has children, delete them first`, { path: file });
  fs.rmSync(file);
  fs.rmSync(mboxIndexDir(tree, name), { recursive: true, force: true });
}

/** Renames the mbox file and moves its index directory along. */
export function renameMboxMailbox(tree: MboxTree, from: string, to: string): void {
  if (isInboxName(from) || isInboxName(to)) throw new MailstoreError("UNSUPPORTED", "renaming INBOX is not supported for mbox");
  const src = mboxFilePath(tree, from);
  const dst = mboxFilePath(tree, to);
  if (!fs.existsSync(src)) throw new MailstoreError("NOT_FOUND", `mailbox ${from} does not exist`, { path: src });
  if (fs.existsSync(dst)) throw new MailstoreError("ALREADY_EXISTS", `mailbox ${to} already exists`, { path: dst });
  makeDirs(path.dirname(dst));
  fs.renameSync(src, dst);
  const srcIndex = mboxIndexDir(tree, from);
  if (fs.existsSync(srcIndex)) {
    const dstIndex = mboxIndexDir(tree, to);
    makeDirs(path.dirname(dstIndex));
    fs.renameSync(srcIndex, dstIndex);
  }
}
