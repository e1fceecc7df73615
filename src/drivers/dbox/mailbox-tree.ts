import * as fs from "node:fs";
import * as path from "node:path";
import { MailstoreError } from "../../shared/errors.js";
import { decodeMutf7 } from "../mutf7.js";
import { makeDirs } from "../../shared/make-dirs.js";
import { DBOX_MAILS_DIR, MAILBOXES_DIR, type DboxLayout } from "./layout.js";

/**
 * The dbox mailbox tree (list layout `fs`): creating, deleting, renaming and
 * listing mailboxes in every tree of a location (layout.ts): the mail tree,
 * whose `dbox-Mails` directories say which mailboxes exist, the `INDEX=`
 * tree and the ALT tree. Shared by sdbox and mdbox, whose mailbox
 * directories differ only in content.
 */

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

/** Creates the mailbox's mail directory, and its index directory when INDEX= gives it one. */
export function createDboxMailboxDir(layout: DboxLayout, name: string): void {
  const dir = layout.mailDir(name);
  if (fs.existsSync(dir)) throw new MailstoreError("ALREADY_EXISTS", `mailbox ${name} already exists`, { path: dir });
  layout.makeMailboxDirs(name);
}

/**
 * Removes the mailbox: its dbox-Mails directory, its ALT directory, and
 * with INDEX= its index files (the index directory of "A" also holds the
 * index directories of "A/B", which stay), then the parents each leaves
 * empty, as doveadm mailbox delete does.
 */
export function deleteDboxMailboxDir(layout: DboxLayout, name: string): void {
  const dir = layout.mailDir(name);
  if (!fs.existsSync(dir)) {
    // Only hierarchy: its mailboxes go first (doveadm's answer too).
    if (fs.existsSync(path.dirname(dir))) throw new MailstoreError("INVALID_ARGUMENT", `mailbox ${name} has children, delete them first`, { path: path.dirname(dir) });
    throw new MailstoreError("NOT_FOUND", `mailbox ${name} does not exist`, { path: dir });
  }
  fs.rmSync(dir, { recursive: true, force: true });
  removeEmptyParents(layout.root, path.dirname(dir));
  const alt = layout.altDir(name);
  if (alt !== undefined && fs.existsSync(alt)) {
    fs.rmSync(alt, { recursive: true, force: true });
    removeEmptyParents(layout.altRoot!, path.dirname(alt));
  }
  if (layout.indexRoot !== undefined) {
    const indexDir = layout.indexDir(name);
    removeIndexFiles(indexDir);
    removeEmptyParents(layout.indexRoot, indexDir);
  }
}

/**
 * Renames the mailbox (with its children) in every tree it has directories
 * in, then removes the parents the move left empty, as doveadm does.
 */
export function renameDboxMailboxDir(layout: DboxLayout, from: string, to: string): void {
  const src = path.dirname(layout.mailDir(from));
  const dst = path.dirname(layout.mailDir(to));
  if (!fs.existsSync(src)) throw new MailstoreError("NOT_FOUND", `mailbox ${from} does not exist`, { path: src });
  const moves: Array<readonly [root: string, from: string, to: string]> = [[layout.root, src, dst]];
  const altFrom = layout.altDir(from);
  if (altFrom !== undefined) moves.push([layout.altRoot!, path.dirname(altFrom), path.dirname(layout.altDir(to)!)]);
  if (layout.indexRoot !== undefined) moves.push([layout.indexRoot, layout.indexDir(from), layout.indexDir(to)]);
  const present = moves.filter(([, a]) => fs.existsSync(a));
  const taken = present.find(([, , b]) => fs.existsSync(b));
  if (taken !== undefined) throw new MailstoreError("ALREADY_EXISTS", `mailbox ${to} already exists`, { path: taken[2] });
  for (const [root, a, b] of present) {
    makeDirs(path.dirname(b));
    fs.renameSync(a, b);
    removeEmptyParents(root, path.dirname(a));
  }
}

/** Removes the files of a mailbox's INDEX= directory, not the directories of its children in it. */
function removeIndexFiles(indexDir: string): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(indexDir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  for (const e of entries) {
    if (!e.isDirectory()) fs.rmSync(path.join(indexDir, e.name), { force: true });
  }
}

/** Removes `dir` and its ancestors while they are empty, stopping at `<root>/mailboxes`. */
function removeEmptyParents(root: string, dir: string): void {
  const top = path.join(root, MAILBOXES_DIR);
  for (let d = dir; d.startsWith(top + path.sep); d = path.dirname(d)) {
    let entries: string[];
    try {
      entries = fs.readdirSync(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw err;
    }
    if (entries.length > 0) break;
    fs.rmdirSync(d);
  }
}
