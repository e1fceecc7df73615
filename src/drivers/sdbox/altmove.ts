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
 * source's (copyFileSync's) nor than the directory gives.
 * @throws the fs error, naming both files; no partial `to` is left.
 */
function copyToNewFile(from: string, to: string): void {
  // Left by a crashed mover with our pid: never renamed into place, so not a message.
  fs.rmSync(to, { force: true });
  const src = fs.openSync(from, "r");
  try {
    const dirPerm = newFilePermissionsIn(path.dirname(to));
    const out = createNewFile(to, fs.constants.O_WRONLY, { ...dirPerm, mode: dirPerm.mode & fs.fstatSync(src).mode });
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
  } catch (err) {
    if (err instanceof Error) err.message = `copying ${from} to ${to}: ${err.message}`;
    throw err;
  } finally {
    fs.closeSync(src);
  }
}
