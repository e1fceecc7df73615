/**
 * The mailbox tree of a Maildir location: listing, creating, deleting and
 * renaming folders the way doveadm 2.3.19 does it.
 *
 * - create: the folder's `cur/ new/ tmp/`, plus an empty `maildirfolder`
 *   in Maildir++ folders (not INBOX).
 * - delete: the folder is renamed to `<root>/..DOVECOT-TRASHED` first, so
 *   the mailbox disappears atomically, then that directory is removed.
 *   Under Maildir++ a child (`.A.B`) is a sibling directory and survives
 *   its parent's deletion, as in Dovecot. A `..`-prefixed directory is never
 *   a mailbox; one left behind by a crash is removed on the next list or delete.
 * - rename: Maildir++ renames `.A` and every `.A.*` child; LAYOUT=fs moves
 *   the directory (children come along). INDEX=/CONTROL= trees follow.
 * - INBOX cannot be deleted or renamed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { InvalidArgumentError, MailstoreError } from "../../shared/errors.js";
import { decodeMutf7 } from "../mutf7.js";
import { classifyMaildirRootEntry, isInboxName, MAILDIR_FOLDER_MARKER, MAILDIR_SEPARATOR, MAILDIR_SUBDIRS, MAILDIR_TRASH_DIR_NAME } from "./folders.js";
import type { MaildirLayout } from "./layout.js";
import { openCreating } from "../../shared/file-mode.js";
import { makeDirs } from "../../shared/make-dirs.js";

/** Every mailbox of the location, "/"-separated, INBOX first, the rest sorted. */
export function listMaildirMailboxes(layout: MaildirLayout): string[] {
  const names = layout.fsLayout ? listFs(layout) : listMaildirPlusPlus(layout);
  return ["INBOX", ...names.filter((n) => !isInboxName(n)).sort()];
}

function listMaildirPlusPlus(layout: MaildirLayout): string[] {
  const out: string[] = [];
  for (const entry of readDirents(layout.root)) {
    if (!entry.isDirectory()) continue;
    const kind = classifyMaildirRootEntry(entry.name, { utf8: layout.utf8 });
    if (kind.kind === "deleting") removeLeftover(path.join(layout.root, entry.name));
    else if (kind.kind === "mailbox") out.push(kind.name.split(MAILDIR_SEPARATOR).join("/"));
  }
  return out;
}

function listFs(layout: MaildirLayout): string[] {
  const out: string[] = [];
  const walk = (dir: string, prefix: string[]) => {
    for (const entry of readDirents(dir)) {
      if (!entry.isDirectory() || (MAILDIR_SUBDIRS as readonly string[]).includes(entry.name)) continue;
      if (entry.name.startsWith("..")) {
        removeLeftover(path.join(dir, entry.name));
        continue;
      }
      const level = layout.utf8 ? entry.name : safeDecode(entry.name);
      const child = path.join(dir, entry.name);
      if (fs.existsSync(path.join(child, "cur"))) out.push([...prefix, level].join("/"));
      walk(child, [...prefix, level]);
    }
  };
  walk(layout.root, []);
  return out;
}

function safeDecode(name: string): string {
  try {
    return decodeMutf7(name);
  } catch (err) {
    // Not modified UTF-7: the raw name, as Dovecot shows it.
    if (err instanceof InvalidArgumentError) return name;
    throw err;
  }
}

function readDirents(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

/** A deletion that did not finish: nothing in it is a mailbox any more. */
function removeLeftover(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Whether mailbox `name` exists (INBOX always does: it is created on first use). */
export function maildirMailboxExists(layout: MaildirLayout, name: string): boolean {
  if (isInboxName(name)) return fs.existsSync(path.join(layout.mailDir(name), "cur"));
  const dir = layout.mailDir(name);
  return layout.fsLayout ? fs.existsSync(path.join(dir, "cur")) : fs.existsSync(dir);
}

/**
 * Creates the folder's directories (and `maildirfolder`).
 * @throws MailstoreError (ALREADY_EXISTS) when it exists.
 */
export function createMaildirMailbox(layout: MaildirLayout, name: string): void {
  if (maildirMailboxExists(layout, name)) throw new MailstoreError("ALREADY_EXISTS", `mailbox ${name} already exists`, { path: layout.mailDir(name) });
  const dir = layout.mailDir(name);
  // A store's first mailbox creates its root: 0700, as Dovecot's (every later directory follows its parent's mode).
  makeDirs(layout.root, { newRoot: true });
  if (isInboxName(name)) makeDirs(dir, { newRoot: true });
  for (const sub of MAILDIR_SUBDIRS) makeDirs(path.join(dir, sub));
  if (!isInboxName(name) && !layout.fsLayout) fs.closeSync(openCreating(path.join(dir, MAILDIR_FOLDER_MARKER), fs.constants.O_WRONLY));
  for (const d of [layout.indexDir(name), layout.controlDir(name)]) makeDirs(d);
}

/**
 * Deletes mailbox `name` atomically (rename to `..DOVECOT-TRASHED`, then
 * remove), with its separate index and control directories.
 * @throws InvalidArgumentError for INBOX, MailstoreError (NOT_FOUND).
 */
export function deleteMaildirMailbox(layout: MaildirLayout, name: string): void {
  if (isInboxName(name)) throw new MailstoreError("UNSUPPORTED", "INBOX can't be deleted"); // not a usage error: doveadm exits 65 (NOTPOSSIBLE)
  if (!maildirMailboxExists(layout, name)) throw new MailstoreError("NOT_FOUND", `mailbox ${name} does not exist`, { path: layout.mailDir(name) });
  const dir = layout.mailDir(name);
  const sideDirs = layout.sideTrees.map((tree) => path.join(tree, layout.inTree(name)));
  if (layout.fsLayout && hasChildMailboxes(dir)) {
    // The directory also holds child mailboxes: only this mailbox's own files go.
    for (const e of readDirents(dir)) if (!e.isDirectory() || (MAILDIR_SUBDIRS as readonly string[]).includes(e.name)) fs.rmSync(path.join(dir, e.name), { recursive: true, force: true });
  } else {
    trashAndRemove(layout.root, dir);
  }
  for (const side of sideDirs) {
    if (side === dir) continue;
    if (layout.fsLayout && hasChildMailboxes(side)) {
      for (const e of readDirents(side)) if (!e.isDirectory()) fs.rmSync(path.join(side, e.name), { force: true });
    } else fs.rmSync(side, { recursive: true, force: true });
  }
}

function hasChildMailboxes(dir: string): boolean {
  return readDirents(dir).some((e) => e.isDirectory() && !(MAILDIR_SUBDIRS as readonly string[]).includes(e.name));
}

/** Dovecot's delete: one rename makes the mailbox vanish, then the rest is cleanup. */
function trashAndRemove(root: string, dir: string): void {
  const trash = path.join(root, MAILDIR_TRASH_DIR_NAME);
  for (let attempt = 0; ; attempt++) {
    try {
      fs.renameSync(dir, trash);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A leftover of a crashed delete is in the way: it is garbage, remove it and retry.
      if ((code === "ENOTEMPTY" || code === "EEXIST") && attempt < 3) removeLeftover(trash);
      else throw err;
    }
  }
  removeLeftover(trash);
}

/**
 * Renames mailbox `from` (and its children) to `to`.
 * @throws InvalidArgumentError for INBOX or a move into itself; MailstoreError
 *   NOT_FOUND / ALREADY_EXISTS.
 */
export function renameMaildirMailbox(layout: MaildirLayout, from: string, to: string): void {
  if (isInboxName(from) || isInboxName(to)) throw new InvalidArgumentError("INBOX can't be renamed");
  if (to === from || to.startsWith(`${from}/`)) throw new InvalidArgumentError(`can't rename ${from} into itself`);
  if (maildirMailboxExists(layout, to)) throw new MailstoreError("ALREADY_EXISTS", `mailbox ${to} already exists`, { path: layout.mailDir(to) });
  const moves: Array<[string, string]> = [];
  const trees = [layout.root, ...layout.sideTrees];
  if (layout.fsLayout) {
    for (const tree of trees) moves.push([path.join(tree, layout.storedName(from)), path.join(tree, layout.storedName(to))]);
  } else {
    const src = layout.storedName(from);
    const dst = layout.storedName(to);
    for (const tree of trees) {
      for (const e of readDirents(tree)) {
        if (e.name === src || e.name.startsWith(`${src}${MAILDIR_SEPARATOR}`)) moves.push([path.join(tree, e.name), path.join(tree, dst + e.name.slice(src.length))]);
      }
    }
  }
  const present = moves.filter(([a]) => fs.existsSync(a));
  // A name that is only hierarchy (.A.B exists, .A does not) renames its children, as Dovecot does.
  if (present.length === 0) throw new MailstoreError("NOT_FOUND", `mailbox ${from} does not exist`, { path: layout.mailDir(from) });
  for (const [a, b] of present) {
    makeDirs(path.dirname(b));
    fs.renameSync(a, b);
  }
}
