/**
 * Expunging from a Maildir as Dovecot's sync does it: with the uidlist lock,
 * unlink() each file, then log EXTERNAL expunges (with zero GUIDs, as
 * Dovecot's sync writes them). dovecot-uidlist keeps the lines of expunged
 * messages until fewer than 75 % of its lines are alive, then it is
 * rewritten without them (observed: 8 lines, 1 expunged → unchanged,
 * 2 expunged → rewritten), with N past every UID the file named, so that
 * the expunged UIDs are not given again once the index is lost; readers
 * skip lines whose file is gone.
 */
import * as fs from "node:fs";
import type { LogRecord } from "../../log/types.js";
import type { IndexMapState } from "../../projections/state.js";
import type { MaildirContext } from "./context.js";
import { maildirFilePath } from "./dir-scan.js";
import { maildirBaseName } from "./filename.js";
import { forEachIndexMessage } from "./index-walk.js";
import { openUidlist } from "./uidlist-open.js";
import { uidlistRecreateNextUid, uidlistWantsRewrite, type UidlistSnapshot } from "./uidlist-file.js";
import type { UidlistRecord } from "./uidlist.js";

/**
 * Unlinks the files of `uids` and updates dovecot-uidlist.
 * @returns the EXTERNAL expunge record for the log.
 * @throws LockTimeoutError when the uidlist lock cannot be had.
 */
export async function expungeMaildirMessages(ctx: MaildirContext, state: IndexMapState, uids: readonly number[]): Promise<LogRecord[]> {
  if (uids.length === 0) return [];
  await ctx.withUidlistLock(ctx.settings.saveLockTimeoutMs ?? 10_000, async () => {
    const list = await openUidlist(ctx, state);
    if (!ctx.files.complete) ctx.files.scan();
    for (const uid of uids) {
      const rec = list.recordOf(uid);
      if (rec) unlinkMessageFile(ctx, maildirBaseName(rec.fileName));
    }
    const live = liveRecords(state, list, new Set(uids));
    if (uidlistWantsRewrite(list.lineCount, 0, live.length)) {
      // N stays above the dropped lines: an expunged UID is never given again.
      ctx.uidlist.recreate({ ...list.header, nextUid: uidlistRecreateNextUid(list, state.header.nextUid) }, live);
    }
  });
  return [{ type: "expunge-guid", external: true, sync: false, expunges: [...uids].sort((a, b) => a - b).map((uid) => ({ uid, guid: new Uint8Array(16) })) }];
}

/**
 * Unlinks the file of `base`. A file renamed since the memo was made (a
 * client changed its flags) is looked up again, as Dovecot's
 * maildir_file_do() retries after a rescan; a file that is gone is fine.
 */
function unlinkMessageFile(ctx: MaildirContext, base: string): void {
  for (let attempt = 0; attempt < 3; attempt++) {
    const file = ctx.files.find(base);
    if (file) {
      try {
        fs.unlinkSync(maildirFilePath(ctx.mailDir, file));
        ctx.files.remove(base);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
    } else if (attempt > 0) return;
    ctx.files.reset();
    ctx.files.scan();
  }
}

/** Records of messages the index keeps (minus `gone`), and those beyond its next UID (not logged yet). */
function liveRecords(state: IndexMapState, list: UidlistSnapshot, gone: ReadonlySet<number>): UidlistRecord[] {
  const out: UidlistRecord[] = [];
  const records = list.records;
  let j = 0;
  forEachIndexMessage(state, (m) => {
    while (j < records.length && records[j].uid < m.uid) j++;
    if (j < records.length && records[j].uid === m.uid) {
      if (!gone.has(m.uid)) out.push(records[j]);
      j++;
    }
  });
  for (const r of records) if (r.uid >= state.header.nextUid) out.push(r);
  return out;
}
