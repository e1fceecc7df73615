import * as fs from "node:fs";
import * as path from "node:path";
import { MailstoreError } from "../../shared/errors.js";
import { IndexWriter } from "../../index-io/writer.js";
import { MailFlag } from "../../log/types.js";
import { sdboxFileName } from "../dbox/files.js";
import { makeDirs } from "../../shared/make-dirs.js";

/**
 * Moves sdbox messages between the primary and the ALT directory. The
 * index keeps where a message lives in its BACKEND flag (0x40), so each move
 * is a logged EXTERNAL flag update. The file is copied and synced into place
 * before the original is removed: a crash leaves two copies (the primary is
 * read first), never none.
 */
export async function altMoveSdbox(dir: string, altDir: string, uids: readonly number[], toAlt: boolean): Promise<number[]> {
  const prefix = path.join(dir, "dovecot.index");
  const writer = IndexWriter.open(prefix, { fsync: "always", keepsIndexBackup: true });
  const moved: number[] = [];
  try {
    await writer.sync(async (sync) => {
      makeDirs(toAlt ? altDir : dir);
      for (const uid of uids) {
        const from = path.join(toAlt ? dir : altDir, sdboxFileName(uid));
        const to = path.join(toAlt ? altDir : dir, sdboxFileName(uid));
        if (!fs.existsSync(from)) continue;
        const tmp = `${to}.altmove.${process.pid}`;
        fs.copyFileSync(from, tmp);
        const fd = fs.openSync(tmp, "r");
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        fs.renameSync(tmp, to);
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

export function requireAlt(altDir: string | undefined): string {
  if (!altDir) throw new MailstoreError("UNSUPPORTED", "this storage has no ALT location");
  return altDir;
}
