import * as fs from "node:fs";
import * as path from "node:path";
import { MailstoreError } from "../../shared/errors.js";
import { decodeMutf7, encodeMutf7 } from "../mutf7.js";
import { makeDirs } from "../../shared/make-dirs.js";

/**
 * The dbox mailbox tree (list layout `fs`): mailbox "A/B" lives in
 * `<root>/mailboxes/A/B/dbox-Mails`, names stored modified-UTF-7. Shared by
 * sdbox and mdbox, whose mailbox directories differ only in content.
 */
export const MAILBOXES_DIR = "mailboxes";
export const DBOX_MAILS_DIR = "dbox-Mails";

export function mailboxDir(root: string, name: string): string {
  const parts = name.split("/").map((part) => {
    if (part === "" || part === "." || part === "..") throw new MailstoreError("INVALID_ARGUMENT", `invalid mailbox name "${name}"`);
    return encodeMutf7(part);
  });
  return path.join(root, MAILBOXES_DIR, ...parts, DBOX_MAILS_DIR);
}

/** Every mailbox under `root`, as "/"-separated names, sorted. */
export function listDboxMailboxes(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, prefix: string[]) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      if (e.name === DBOX_MAILS_DIR) {
        if (prefix.length > 0) out.push(prefix.join("/"));
        continue;
      }
      walk(path.join(dir, e.name), [...prefix, decodeMutf7(e.name)]);
    }
  };
  walk(path.join(root, MAILBOXES_DIR), []);
  return out.sort();
}

export function createDboxMailboxDir(root: string, name: string): void {
  const dir = mailboxDir(root, name);
  if (fs.existsSync(dir)) throw new MailstoreError("ALREADY_EXISTS", `mailbox ${name} already exists`, { path: dir });
  makeDirs(dir);
}

/** Removes the mailbox's dbox-Mails directory, then parents left empty (not the tree root). */
export function deleteDboxMailboxDir(root: string, name: string): void {
  const dir = mailboxDir(root, name);
  if (!fs.existsSync(dir)) {
    // Only hierarchy: its mailboxes go first (doveadm's answer too).
    if (fs.existsSync(path.dirname(dir))) throw new MailstoreError("INVALID_ARGUMENT", `mailbox ${name} has children, delete them first`, { path: path.dirname(dir) });
    throw new MailstoreError("NOT_FOUND", `mailbox ${name} does not exist`, { path: dir });
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const top = path.join(root, MAILBOXES_DIR);
  for (let parent = path.dirname(dir); parent.startsWith(top) && parent !== top; parent = path.dirname(parent)) {
    if (fs.readdirSync(parent).length > 0) break;
    fs.rmdirSync(parent);
  }
}

export function renameDboxMailboxDir(root: string, from: string, to: string): void {
  const src = path.dirname(mailboxDir(root, from));
  const dst = path.dirname(mailboxDir(root, to));
  if (!fs.existsSync(src)) throw new MailstoreError("NOT_FOUND", `mailbox ${from} does not exist`, { path: src });
  if (fs.existsSync(dst)) throw new MailstoreError("ALREADY_EXISTS", `mailbox ${to} already exists`, { path: dst });
  makeDirs(path.dirname(dst));
  fs.renameSync(src, dst);
}
