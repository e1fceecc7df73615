/**
 * The permissions a new file gets in a directory, as Dovecot's
 * file_create_mode and file_create_gid follow the mailbox directory:
 *
 * - mode: the directory's read/write bits for group and others, never less
 *   than 0600 for the owner. A 0700 mailbox directory gives 0600 files; a
 *   0770 shared one, 0660. Like Dovecot, not narrowed by the umask: a
 *   shared store stays shared whoever writes it (a chmod only when the
 *   umask took bits away).
 * - group: the directory's, given with fchown() when the kernel would not
 *   give it anyway — unless the directory is set-group-ID (the kernel does
 *   it), its group has no other rights than everyone (nothing to share), or
 *   it is already our effective group.
 * - owner: a process whose effective uid is 0 (a server or script embedding
 *   the library as root) gives a file or directory it creates in a
 *   directory another user owns to that user: the directory's uid and
 *   group, in one fchown() right after the creation — before a temporary
 *   file is renamed or linked to its final name, so no root-owned file is
 *   ever visible there. Dovecot, running as that user, must be able to lock
 *   and rewrite every file of its store ("a store is never left with a file
 *   owned by the wrong user"). The CLI gets the same result another way: it
 *   switches to the store root's uid and gid (src/cli/store-owner.ts); the
 *   library must not change the identity of the process it runs in.
 *   With an owner, its group replaces the group rule's: the group rule gives
 *   the directory's group except when the directory is set-group-ID (the
 *   kernel gives the directory's group too), when that group has no more
 *   rights than everyone (the file's group bits then equal its other bits,
 *   so any group grants the same) or when it is the creator's own group
 *   (the directory's group again). So the directory's group gives the same
 *   access as the group the user itself would get. A root-owned directory
 *   leaves the file root's, as the CLI leaves itself root there. The euid is
 *   read each time (an embedder may seteuid() between calls), only where
 *   the directory is statted anyway; the owner comes from that stat.
 *
 * Acting as root in a directory a user owns, that user can plant a symlink
 * at any name we use there: every change of mode or owner goes through the
 * descriptor we created (fchmod/fchown, never by path), new files are
 * created with O_EXCL (which does not follow a symlink) and an existing one
 * is opened with O_NOFOLLOW; before giving a new entry to the user, where it
 * really is is checked (checkRealParent: a directory above it could have
 * been swapped for a symlink). Existing files opened by name elsewhere
 * (mbox, uidlist, logs, ...) still follow symlinks: see README.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LockTimeoutError, MailstoreError } from "./errors.js";
import { cleanupAfterSync } from "./cleanup.js";

/** The process's umask, read once (library code never sets it). */
const UMASK = process.umask();

/** S_ISGID (not in Node's fs.constants). */
const SET_GROUP_ID = 0o2000;

export interface NewFilePermissions {
  readonly mode: number;
  /** The group to give the file after creating it; undefined when it gets the right one by itself. */
  readonly gid: number | undefined;
  /** Acting as root in a directory another user owns: who gets the file (replaces `gid`). */
  readonly owner?: FileOwner | undefined;
  /** The directory whose stat decided these (the named one, symlinks resolved): where a new entry must really be to get `owner`. */
  readonly parent: DirId;
}

/** A directory's identity: what checkRealParent compares, never a path (a path can be swapped). */
export interface DirId {
  readonly dev: number;
  readonly ino: number;
}

export function dirId(st: fs.Stats): DirId {
  return { dev: st.dev, ino: st.ino };
}

/** The uid and gid a file created as root is given. */
export interface FileOwner {
  readonly uid: number;
  /** -1: the group the kernel gave stays. */
  readonly gid: number;
}

/** Whether the effective uid is 0 now (not cached: an embedder may seteuid() between calls). */
function actingAsRoot(): boolean {
  return process.geteuid?.() === 0;
}

/**
 * @returns the permissions for a new file (or directory: see makeDirs) in `dir`.
 * @throws the stat error: a directory that cannot be statted cannot take the file either.
 */
export function newFilePermissionsIn(dir: string): NewFilePermissions {
  const st = fs.statSync(dir);
  return { mode: (st.mode & 0o666) | 0o600, gid: groupToGive(st), owner: ownerToGive(st), parent: dirId(st) };
}

/**
 * Who a file or directory created in (or with the permissions of) `dir`
 * must belong to: `dir`'s owner and group when we are root and `dir` is
 * not root's; undefined otherwise (the kernel's owner is right).
 */
export function ownerToGive(dir: fs.Stats): FileOwner | undefined {
  if (dir.uid === 0) return undefined;
  return actingAsRoot() ? { uid: dir.uid, gid: dir.gid } : undefined;
}

/** ownerToGive() of the directory at `dir`, statted only when we are root. */
export function ownerToGiveIn(dir: string): FileOwner | undefined {
  return actingAsRoot() ? ownerToGive(fs.statSync(dir)) : undefined;
}

/** Dovecot's file_create_gid for a directory with these stats. */
export function groupToGive(dir: fs.Stats): number | undefined {
  if (dir.mode & SET_GROUP_ID) return undefined;
  if (((dir.mode >> 3) & 0o7) === (dir.mode & 0o7)) return undefined;
  if (process.getegid?.() === dir.gid) return undefined;
  return dir.gid;
}

/**
 * Gives the file open as `fd` (`filePath`), right after this process created
 * it, what the umask and the kernel may have left out: its full mode and
 * the owner or group `perm` asks for. By descriptor only: a path could
 * have become a user's symlink meanwhile. A group we are not a member of
 * fails with EPERM, as Dovecot's save fails: the error names the file.
 */
export function finishNewFile(fd: number, perm: NewFilePermissions, filePath: string): void {
  try {
    if (perm.owner !== undefined) checkRealParent(fd, perm.owner, perm.parent, filePath);
    if ((perm.mode & UMASK) !== 0) fs.fchmodSync(fd, perm.mode);
    const uid = perm.owner?.uid ?? -1;
    const gid = perm.owner?.gid ?? perm.gid;
    if (uid === -1 && gid === undefined) return;
    fs.fchownSync(fd, uid, gid ?? -1);
  } catch (err) {
    if (err instanceof Error && "code" in err && !(err instanceof MailstoreError)) err.message = `${filePath}: ${err.message}`;
    throw err;
  }
}

/**
 * Before giving the entry we just created (open as `fd`) to `owner`: O_EXCL
 * and O_NOFOLLOW guard only the last component of `filePath`, so the user
 * could have swapped a directory above it for a symlink (to /root, say)
 * between our stat and the creation. The kernel's name for the entry
 * (/proc/self/fd, as bytes: a path need not be UTF-8) tells where it really
 * is: its directory must be `parent`, the one whose stat decided the
 * permissions — any symlink on the way (a root-owned /var/mail -> spool/mail)
 * was resolved by that stat. Never the named path re-statted here: that
 * would follow the user's swapped-in symlink. Without /proc: refused.
 * @throws MailstoreError UNSUPPORTED naming the file, when the entry is elsewhere.
 */
function checkRealParent(fd: number, owner: FileOwner, parent: DirId, filePath: string): void {
  const real = realPathOf(fd, owner, filePath);
  const slash = real.lastIndexOf(0x2f);
  const st = fs.lstatSync(slash <= 0 ? Buffer.from("/") : real.subarray(0, slash));
  if (st.dev === parent.dev && st.ino === parent.ino) return;
  throw new MailstoreError("UNSUPPORTED", `created as ${real.toString()}, not in the directory its permissions came from: a symlink in its path? Not given to uid ${owner.uid} as root`, { path: filePath });
}

/** The kernel's path of `fd`, as bytes. @throws MailstoreError UNSUPPORTED without /proc. */
function realPathOf(fd: number, owner: FileOwner, filePath: string): Buffer {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`, { encoding: "buffer" });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    throw new MailstoreError("UNSUPPORTED", `/proc is not mounted: cannot check where the new entry is before giving it to uid ${owner.uid} as root`, { path: filePath });
  }
}

/**
 * makeDirs' counterpart of finishNewFile for a directory it just made with
 * `mode`: opened without following a symlink (the parent's owner could have
 * swapped one in after the mkdir) and changed through that descriptor.
 * With an `owner`, it must be in `parent` (checkRealParent).
 * @returns the new directory's identity when it was given to `owner` (the
 * `parent` of a level made inside it), else undefined.
 * @throws MailstoreError UNSUPPORTED (checkRealParent) after removing the
 * directory (empty, ours) when it is not in `parent`.
 */
export function finishNewDir(dir: string, mode: number, gid: number | undefined, owner?: { owner: FileOwner; parent: DirId }): DirId | undefined {
  const chmod = (mode & UMASK) !== 0;
  if (!chmod && owner === undefined && gid === undefined) return undefined;
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
  try {
    if (owner !== undefined) {
      try {
        checkRealParent(fd, owner.owner, owner.parent, dir);
      } catch (err) {
        // Just made by us and empty: rmdir removes nothing else.
        if (err instanceof MailstoreError) cleanupAfterSync(err, () => fs.rmdirSync(realPathOf(fd, owner.owner, dir)));
        throw err;
      }
    }
    // The set-group-ID bit the kernel copies from a parent stays: a chmod without it would clear it.
    if (chmod) fs.fchmodSync(fd, mode | (fs.fstatSync(fd).mode & SET_GROUP_ID));
    // chown() keeps a directory's set-group-ID bit (it clears it on files only).
    if (owner !== undefined) {
      fs.fchownSync(fd, owner.owner.uid, owner.owner.gid);
      return dirId(fs.fstatSync(fd));
    }
    if (gid !== undefined) fs.fchownSync(fd, -1, gid);
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Creates `filePath` (O_CREAT | O_EXCL, plus `flags`: O_WRONLY when not
 * given) with the permissions of its directory, mode and group.
 * @returns the descriptor. @throws EEXIST when the file is there; when
 * giving it its mode or owner fails, the file (ours: O_EXCL) is removed —
 * a caller would otherwise find its name taken (a mailbox half made, a
 * fixed temp name) — except when checkRealParent refused it: `filePath`
 * then does not name what we made.
 */
export function createNewFile(filePath: string, flags: number = fs.constants.O_WRONLY, perm = newFilePermissionsIn(path.dirname(filePath))): number {
  return createWith(filePath, flags, perm, true);
}

/**
 * Opens `filePath` with `flags`, creating it when missing: only a file this
 * call creates gets its directory's permissions; one that is there keeps its
 * own (another writer's, or Dovecot's). As root in another user's
 * directory, an existing file is opened with O_NOFOLLOW: a symlink there
 * (the user's) would have us write, as root, wherever it points.
 * @throws MailstoreError UNSUPPORTED naming the file when it is a symlink then.
 */
export function openCreating(filePath: string, flags: number): number {
  const perm = newFilePermissionsIn(path.dirname(filePath));
  const plain = flags & ~(fs.constants.O_CREAT | fs.constants.O_EXCL);
  const existing = perm.owner === undefined ? plain : plain | fs.constants.O_NOFOLLOW;
  for (let attempt = 1; ; attempt++) {
    try {
      return createWith(filePath, plain, perm, false);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    try {
      return fs.openSync(filePath, existing);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ELOOP") throw new MailstoreError("UNSUPPORTED", `a symlink in a directory of uid ${perm.owner?.uid}: not followed as root`, { path: filePath });
      if (code !== "ENOENT") throw err;
    }
    // EEXIST then ENOENT: a dangling symlink (O_EXCL does not follow it, open does) — or the
    // file was removed between the two opens: create it after all, a bounded number of times.
    if (fs.lstatSync(filePath, { throwIfNoEntry: false })?.isSymbolicLink()) {
      throw new MailstoreError("UNSUPPORTED", "a symlink to a missing file: not followed", { path: filePath });
    }
    // Contention, as a lock that is never free: callers retrying on LockTimeoutError retry this too.
    if (attempt === OPEN_CREATING_ATTEMPTS) throw new LockTimeoutError(`created and removed by others ${attempt} times while we opened it`, { path: filePath });
  }
}

/** openCreating's tries when other processes keep creating and removing the file. */
const OPEN_CREATING_ATTEMPTS = 100;

/**
 * O_CREAT | O_EXCL, then finishNewFile. When that fails the file is closed,
 * and removed only when `remove` (a name only its creator uses): under a
 * shared name (outbox, dovecot.mailbox.log, a journal) a concurrent
 * openCreating may already have it open and written to it. Never after a
 * MailstoreError (checkRealParent: the path leads elsewhere), and only
 * while the name still leads to our inode.
 */
function createWith(filePath: string, flags: number, perm: NewFilePermissions, remove: boolean): number {
  const fd = fs.openSync(filePath, flags | fs.constants.O_CREAT | fs.constants.O_EXCL, perm.mode);
  try {
    finishNewFile(fd, perm, filePath);
  } catch (err) {
    if (remove && !(err instanceof MailstoreError)) cleanupAfterSync(err, () => unlinkIfSame(filePath, fs.fstatSync(fd)));
    cleanupAfterSync(err, () => fs.closeSync(fd));
    throw err;
  }
  return fd;
}

/** Unlinks `filePath` when it is still the file `made` (not a symlink or another file put there meanwhile). */
function unlinkIfSame(filePath: string, made: fs.Stats): void {
  const st = fs.lstatSync(filePath, { throwIfNoEntry: false });
  if (st !== undefined && st.dev === made.dev && st.ino === made.ino) fs.unlinkSync(filePath);
}

/**
 * createNewFile for a name only its creator uses (a temporary name with our
 * pid, or one written only under a lock we hold): whatever is there — left
 * by a crashed run, or a symlink a user planted — is removed first, never
 * written through (O_EXCL does not follow a symlink).
 */
export function createPrivateFile(filePath: string, flags: number = fs.constants.O_WRONLY, perm = newFilePermissionsIn(path.dirname(filePath))): number {
  fs.rmSync(filePath, { force: true });
  return createNewFile(filePath, flags, perm);
}

/**
 * Writes `bytes` as the new file `filePath` (createNewFile: its directory's
 * permissions and, as root, owner), data-synced when `sync`.
 * @throws EEXIST when the file is there.
 */
export function writeNewFile(filePath: string, bytes: Uint8Array, sync = false): void {
  writeAndClose(createNewFile(filePath), bytes, sync);
}

/** writeNewFile under a private name (createPrivateFile: what is there is removed first). */
export function writePrivateFile(filePath: string, bytes: Uint8Array, sync = false): void {
  writeAndClose(createPrivateFile(filePath), bytes, sync);
}

function writeAndClose(fd: number, bytes: Uint8Array, sync: boolean): void {
  try {
    for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done);
    if (sync) fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
