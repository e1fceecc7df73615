import * as fs from "node:fs";
import * as path from "node:path";
import { MailstoreError } from "../../shared/errors.js";
import { IndexWriter } from "../../index-io/writer.js";
import { MailFlag } from "../../log/types.js";
import { sdboxFileName } from "../dbox/files.js";
import { makeDirs } from "../../shared/make-dirs.js";
import { createNewFile, newFilePermissionsIn } from "../../shared/file-mode.js";
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
      makeDirs(toAlt ? altDir : dir);
      for (const uid of uids) {
        const from = path.join(toAlt ? dir : altDir, sdboxFileName(uid));
        const to = path.join(toAlt ? altDir : dir, sdboxFileName(uid));
        if (!fs.existsSync(from)) continue;
        const tmp = `${to}.altmove.${process.pid}`;
        copyToNewFile(from, tmp);
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
 * Copies `from` into the new file `to`, synced. Not copyFileSync: its copy
 * is ours (root's, embedded as root) where a new file takes its directory's
 * group and owner (file-mode.ts). The mode is never wider than the
 * source's (copyFileSync's) nor than the directory gives. `from` is opened
 * without following a symlink and must be a regular file — as root, one
 * the new owner already owns: otherwise the copy would hand the user a file
 * it could not read (a symlink it planted to a root-only file).
 * @throws MailstoreError UNSUPPORTED naming `from` then, nothing copied or
 * removed; the fs error, naming both files; no partial `to` is left.
 */
function copyToNewFile(from: string, to: string): void {
  try {
    const src = openNoFollow(from);
    try {
      const dirPerm = newFilePermissionsIn(path.dirname(to));
      const st = fs.fstatSync(src);
      if (!st.isFile()) throw new MailstoreError("UNSUPPORTED", "not a regular file: not moved", { path: from });
      if (dirPerm.owner !== undefined && st.uid !== dirPerm.owner.uid) {
        throw new MailstoreError("UNSUPPORTED", `owned by uid ${st.uid}, not by uid ${dirPerm.owner.uid} who would own its copy: not moved as root`, { path: from });
      }
      // Left by a crashed mover with our pid: never renamed into place, so not a message.
      fs.rmSync(to, { force: true });
      let out: number;
      try {
        out = createNewFile(to, fs.constants.O_WRONLY, { ...dirPerm, mode: dirPerm.mode & st.mode });
      } catch (err) {
        // Our private temp name, made but not given its owner (createNewFile closes it, leaves it):
        // removed. Not after a MailstoreError: then `to` does not name what was made.
        if (!(err instanceof MailstoreError) && (err as NodeJS.ErrnoException).code !== "EEXIST") cleanupAfterSync(err, () => fs.rmSync(to, { force: true }));
        throw err;
      }
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
    } finally {
      fs.closeSync(src);
    }
  } catch (err) {
    if (err instanceof MailstoreError) throw err;
    if (err instanceof Error) err.message = `copying ${from} to ${to}: ${err.message}`;
    throw err;
  }
}

/** Opens the message file `from` for reading, not through a symlink. @throws MailstoreError UNSUPPORTED for a symlink. */
function openNoFollow(from: string): number {
  try {
    return fs.openSync(from, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ELOOP") throw new MailstoreError("UNSUPPORTED", "a symlink, not a message file: not moved", { path: from });
    throw err;
  }
}
