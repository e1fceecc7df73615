/**
 * Finding and reading the file of message UID: its base name from
 * dovecot-uidlist, its current full name (flags change it) from the memo of
 * new/ and cur/. A file renamed by someone since the memo was made is found
 * by reading the directories again, as Dovecot's maildir_file_do() retries.
 */
import * as fs from "node:fs";
import { MailstoreError } from "../../shared/errors.js";
import type { StoredMessageInfo } from "../driver.js";
import type { MaildirContext } from "./context.js";
import { maildirFilePath } from "./dir-scan.js";
import { maildirBaseName, maildirFileNameSize } from "./filename.js";
import { uidlistMessageGuid, type UidlistRecord } from "./uidlist.js";

function notFound(ctx: MaildirContext, uid: number): MailstoreError {
  return new MailstoreError("NOT_FOUND", `message uid ${uid} of ${ctx.name} has no file`, { path: ctx.mailDir });
}

/** The uidlist record of `uid` (re-reading the file when it changed). */
export function uidlistRecordOf(ctx: MaildirContext, uid: number): UidlistRecord {
  const rec = ctx.uidlist.read()?.recordOf(uid);
  if (!rec) throw notFound(ctx, uid);
  return rec;
}

/**
 * Runs `fn` on the path of `uid`'s file; when the file is not where the
 * memo says (ENOENT), the directories are read again and `fn` retried.
 * @throws MailstoreError (NOT_FOUND) when the message has no file.
 */
export function withMessageFile<T>(ctx: MaildirContext, uid: number, fn: (filePath: string, rec: UidlistRecord) => T): T {
  const rec = uidlistRecordOf(ctx, uid);
  const base = maildirBaseName(rec.fileName);
  for (let attempt = 0; attempt < 3; attempt++) {
    if (attempt > 0 || !ctx.files.complete) {
      if (attempt > 0) ctx.files.reset();
      ctx.files.scan();
    }
    const file = ctx.files.find(base);
    if (!file) {
      if (attempt === 0) continue;
      break;
    }
    try {
      return fn(maildirFilePath(ctx.mailDir, file), rec);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  throw notFound(ctx, uid);
}

/** The stored bytes of `uid`. */
export function readMaildirMessage(ctx: MaildirContext, uid: number): Uint8Array {
  return withMessageFile(ctx, uid, (p) => fs.readFileSync(p));
}

/**
 * Identity and sizes of `uid`: GUID = the uidlist's `G`, else the base file
 * name (what `doveadm fetch guid` shows); INTERNALDATE = the file's mtime,
 * which a save sets; the save date is the file's ctime.
 */
export function maildirMessageInfo(ctx: MaildirContext, uid: number): StoredMessageInfo {
  return withMessageFile(ctx, uid, (p, rec) => {
    const st = fs.statSync(p);
    return {
      guid: uidlistMessageGuid(rec),
      physicalSize: maildirFileNameSize(rec.fileName, "S") ?? st.size,
      receivedTime: Math.floor(st.mtimeMs / 1000),
      savedTime: Math.floor(st.ctimeMs / 1000),
    };
  });
}
