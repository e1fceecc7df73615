/**
 * `mkdir -p` without Node's `fs.mkdirSync(dir, { recursive: true })`, which
 * on Node 20 loops forever at 100% CPU under /proc (e.g. a mail location
 * mistyped as /proc/…): here the existing ancestor is found by stat() and
 * each missing level created on its own, so any failure is thrown once.
 *
 * Modes follow Dovecot's: a directory inside the store takes the permission
 * bits of the directory it is created in (a 0700 mailbox tree stays 0700, a
 * 0770 shared one 0770) and its group (see file-mode.ts), and a new
 * storage root is 0700 (`newRoot`). An
 * ancestor with the sticky bit (/tmp) is nobody's store: what is created
 * under it is 0700 too. As Dovecot, the umask does not narrow them; nothing
 * is ever wider than the directory it is made in. Made by root, they belong
 * to the owner of the directory whose mode they take (file-mode.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { dirId, finishNewDir, groupToGive, ownerToGive, type DirId } from "./file-mode.js";

export interface MakeDirsOptions {
  /** The directory is a storage root: every level created is 0700, as Dovecot creates a missing mail root. */
  readonly newRoot?: boolean;
  /**
   * The levels created take this existing directory's mode and group
   * instead of the nearest existing ancestor's: Dovecot creates a missing
   * `INDEX=` root with the permissions of the mail root, wherever it is.
   */
  readonly permissionsOf?: string;
}

const OWNER_ONLY = 0o700;
/** Matches no directory: a level made under something that is not one is never given away. */
const NO_DIR: DirId = { dev: -1, ino: -1 };
/** S_ISVTX (not in Node's fs.constants). */
const STICKY = 0o1000;

/** Creates `dir` and its missing parents; an existing directory is fine. */
export function makeDirs(dir: string, opts: MakeDirsOptions = {}): void {
  const missing: string[] = [];
  let ancestor: fs.Stats | undefined;
  let existing: fs.Stats | undefined;
  for (let d = path.resolve(dir); ; ) {
    try {
      ancestor = existing = fs.statSync(d);
      break; // exists (a file here makes the mkdir below fail with ENOTDIR)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    missing.push(d);
    const parent = path.dirname(d);
    if (parent === d) break;
    d = parent;
  }
  if (missing.length === 0) return;
  if (opts.permissionsOf !== undefined) ancestor = fs.statSync(opts.permissionsOf);
  const ownerOnly = opts.newRoot || ancestor === undefined || (ancestor.mode & STICKY) !== 0;
  const mode = ownerOnly ? OWNER_ONLY : ancestor!.mode & 0o777;
  const gid = ownerOnly ? undefined : groupToGive(ancestor!);
  // Also for a new root: as root under a user's home, the CLI would have become that user.
  const owner = ancestor === undefined ? undefined : ownerToGive(ancestor);
  // Where each new level must really be to be given to `owner` (checkRealParent): the existing
  // ancestor as statted above (symlinks resolved), then the level just made (by its descriptor).
  let parent: DirId | undefined = existing === undefined ? undefined : dirId(existing);
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d, mode);
      parent = finishNewDir(d, mode, gid, owner && { owner, parent: parent ?? NO_DIR });
    } catch (err) {
      // Another process may create the same directory meanwhile: the next level goes in it. lstat, not
      // stat: a symlink put there instead (to /root, say) must not become where a level is given away.
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const st = fs.lstatSync(d);
      parent = st.isDirectory() ? dirId(st) : undefined;
    }
  }
}

/**
 * Creates `dir` (parents as makeDirs) with the permissions Dovecot derives
 * from the mailbox it belongs to rather than from its parent: an mbox
 * file's mode with x added to every r (an 0600 INBOX gives a 0700 index
 * directory, an 0644 mailbox 0755) and its group; made by root, the owner
 * of the directory it is made in. Without that file (not created yet), as
 * makeDirs.
 */
export function makeDirsFor(dir: string, mailboxFile: string): void {
  let file: fs.Stats;
  try {
    file = fs.statSync(mailboxFile);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    return makeDirs(dir);
  }
  makeDirs(path.dirname(dir));
  // Before the mkdir: the directory the new one must really be in (checkRealParent).
  const parentSt = fs.statSync(path.dirname(dir));
  const mode = (file.mode & 0o666) | ((file.mode & 0o444) >> 2);
  try {
    fs.mkdirSync(dir, mode);
  } catch (err) {
    // There already (ours, Dovecot's, or another process's meanwhile): it keeps its own.
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return;
    throw err;
  }
  const gid = groupToGive(file);
  const owner = ownerToGive(parentSt);
  // The mailbox file's group, when the group rule gives it, stays with the new owner.
  finishNewDir(dir, mode, gid, owner && { owner: gid !== undefined ? { uid: owner.uid, gid } : owner, parent: dirId(parentSt) });
}
