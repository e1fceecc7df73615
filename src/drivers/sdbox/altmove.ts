import * as fs from "node:fs";
import * as path from "node:path";
import { MailstoreError } from "../../shared/errors.js";
import { IndexWriter } from "../../index-io/writer.js";
import { MailFlag } from "../../log/types.js";
import { sdboxFileName } from "../dbox/files.js";
import { makeDirs } from "../../shared/make-dirs.js";
import { createPrivateFile, newFilePermissionsIn, type NewFilePermissions } from "../../shared/file-mode.js";
import { fsyncDir } from "../../shared/fsync-dir.js";
import { cleanupAfterSync } from "../../shared/cleanup.js";
import type { DboxLayout } from "../dbox/layout.js";

/**
 * Moves sdbox messages between the primary and the ALT directory. The
 * index keeps where a message lives in its BACKEND flag (0x40), so each move
 * is a logged EXTERNAL flag update. The file is copied and synced into place
 * before the original is removed: a crash leaves two copies (the primary is
 * read first), never none.
 */
export async function altMoveSdbox(layout: DboxLayout, name: string, uids: readonly number[], toAlt: boolean): Promise<number[]> {
  const altDir = layout.altDir(name);
  if (altDir === undefined) throw new MailstoreError("UNSUPPORTED", "this storage has no ALT location", { path: layout.root });
  const dir = layout.mailDir(name);
  const writer = IndexWriter.open(layout.indexPrefix(name), { fsync: "always", keepsIndexBackup: true });
  const moved: number[] = [];
  try {
    await writer.sync(async (sync) => {
      const toDir = toAlt ? altDir : dir;
      makeDirs(toDir);
      const dirPerm = newFilePermissionsIn(toDir);
      // Every source checked before any is moved: a refusal part-way would leave moved files whose
      // BACKEND flag is never logged (copyToNewFile checks again: they could change meanwhile).
      const sources = uids.map((uid) => ({ uid, from: path.join(toAlt ? dir : altDir, sdboxFileName(uid)) }));
      const present = sources.filter(({ from }) => withSource(from, dirPerm, () => undefined));
      for (const { uid, from } of present) {
        const to = path.join(toDir, sdboxFileName(uid));
        const tmp = `${to}.altmove.${process.pid}`;
        if (!copyToNewFile(from, tmp, dirPerm)) continue;
        fs.renameSync(tmp, to);
        // The new name on disk before the old one goes (two directories: no
        // single rename orders them), so a crash leaves two copies, never none.
        fsyncDir(path.dirname(to));
        fs.rmSync(from);
        moved.push(uid);
      }
      if (moved.length === 0) return;
      await sync.append([[{
        type: "flag-update", external: true, sync: false,
        updates: moved.map((uid) => ({ uid1: uid, uid2: uid, addFlags: toAlt ? MailFlag.BACKEND : 0, removeFlags: toAlt ? 0 : MailFlag.BACKEND, modseqIncFlag: 0 })),
      }]]);
    });
  } finally {
    await writer.close();
  }
  return moved;
}

/**
 * Copies `from` into the new file `to` (in the directory `dirPerm` was
 * taken from), synced. Not copyFileSync: its copy is ours (root's,
 * embedded as root) where a new file takes its directory's group and owner
 * (file-mode.ts). The mode is never wider than the source's
 * (copyFileSync's) nor than the directory gives. `from` must be a message
 * file (withSource).
 * @returns false when `from` is missing (nothing copied).
 * @throws MailstoreError UNSUPPORTED naming `from` then, nothing copied or
 * removed; the fs error, naming both files; no partial `to` is left.
 */
function copyToNewFile(from: string, to: string, dirPerm: NewFilePermissions): boolean {
  try {
    return withSource(from, dirPerm, (src, st) => {
      // One left by a crashed mover with our pid was never renamed into place: not a message.
      // createPrivateFile removes `to` itself when giving it its owner fails.
      const out = createPrivateFile(to, fs.constants.O_WRONLY, { ...dirPerm, mode: dirPerm.mode & st.mode });
      try {
        const buf = Buffer.allocUnsafe(1 << 16);
        for (let n; (n = fs.readSync(src, buf, 0, buf.length, null)) > 0; ) {
          for (let done = 0; done < n; ) done += fs.writeSync(out, buf, done, n - done);
        }
        fs.fsyncSync(out);
      } catch (err) {
        cleanupAfterSync(err, () => fs.closeSync(out));
        cleanupAfterSync(err, () => fs.rmSync(to, { force: true }));
        throw err;
      }
      fs.closeSync(out);
    });
  } catch (err) {
    if (err instanceof MailstoreError) throw err;
    if (err instanceof Error) err.message = `copying ${from} to ${to}: ${err.message}`;
    throw err;
  }
}

/**
 * Opens the message file `from` and runs `use` on it, if it is one we may
 * copy into a file of the directory `dirPerm` describes:
 * - a regular file;
 * - as root (dirPerm.owner): not through a symlink (O_NOFOLLOW; a non-root
 *   mover follows one, as before: it cannot read more than it may), and
 *   when another uid than the new owner owns it (a u.N left by an older
 *   root run, or by another member of a shared store), only with one link:
 *   a hard link the user made to root's or another user's file would
 *   otherwise be copied into a file the user owns. Our own sdbox COPY
 *   hard-links u.N files (mailbox-backend linkCopy), but as root those
 *   files are the owner's already (given at save): a foreign-owned u.N
 *   with more links is a root run of before that, or not ours — refused.
 * @returns false when `from` is missing (nothing to move).
 * @throws MailstoreError UNSUPPORTED naming `from` otherwise.
 */
function withSource(from: string, dirPerm: NewFilePermissions, use: (fd: number, st: fs.Stats) => void): boolean {
  const owner = dirPerm.owner;
  let src: number;
  try {
    src = fs.openSync(from, fs.constants.O_RDONLY | (owner === undefined ? 0 : fs.constants.O_NOFOLLOW));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return false;
    if (code === "ELOOP") throw new MailstoreError("UNSUPPORTED", "a symlink, not a message file: not moved as root", { path: from });
    throw err;
  }
  try {
    const st = fs.fstatSync(src);
    if (!st.isFile()) throw new MailstoreError("UNSUPPORTED", "not a regular file: not moved", { path: from });
    if (owner !== undefined && st.uid !== owner.uid && st.nlink > 1) {
      throw new MailstoreError("UNSUPPORTED", `owned by uid ${st.uid} with ${st.nlink} links (a hard link to a file elsewhere?), not by uid ${owner.uid} who would own its copy: not moved as root`, { path: from });
    }
    use(src, st);
    return true;
  } finally {
    fs.closeSync(src);
  }
}
