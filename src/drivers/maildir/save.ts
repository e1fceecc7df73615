/**
 * Saving messages into a Maildir as Dovecot 2.3's maildir-save.c does:
 *
 * 1. each message is written to `tmp/<secs>.M<usecs>P<pid>.<host>` (O_EXCL,
 *    LF line endings, fsync), its mtime set to the INTERNALDATE;
 * 2. with the uidlist lock: the file is renamed (not linked) to
 *    `new/<base>,S=<size>,W=<vsize>` when it has no flags or keywords, to
 *    `cur/<base>,S=..,W=..:2,<letters>` otherwise;
 * 3. dovecot-uidlist gets `<uid> :<base>` lines (with `G<guid>` when a GUID
 *    was given that cannot be the file name), then the lock is released.
 *
 * A given GUID becomes the file's base name when it can be one: it carries
 * the right `,S=`/`,W=` sizes (a GUID that came from a Maildir file does),
 * and no other file has it — so copying a Maildir message keeps its name, as
 * Dovecot's hard-link copy does. Otherwise a new name is made and the GUID
 * stored as `G`.
 *
 * Files and uidlist lines exist before the caller logs the APPEND: a crash in
 * between leaves files with UIDs the next sync logs, never the reverse.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { LogRecord } from "../../log/types.js";
import type { IndexMapState } from "../../projections/state.js";
import { toLfLineEndings, virtualSizeOf } from "../dbox/message-body.js";
import type { NewMessage, PreparedSave } from "../driver.js";
import type { MaildirContext } from "./context.js";
import type { MaildirFile } from "./dir-scan.js";
import { formatMaildirFileName, maildirBaseName, maildirFileNameSize } from "./filename.js";
import type { KeywordTable } from "./keywords-table.js";
import { newMaildirBaseName } from "./unique-name.js";
import { openUidlist } from "./uidlist-open.js";
import { snapshotNextUid, type UidlistSnapshot } from "./uidlist-file.js";
import type { UidlistRecord } from "./uidlist.js";
import { fsyncDir } from "../../shared/fsync-dir.js";
import { createNewFile } from "../../shared/file-mode.js";

/** A message written to tmp/, waiting for its final name. */
interface TmpFile {
  readonly tmpPath: string;
  readonly tmpBase: string;
  readonly size: number;
  readonly vsize: number;
  readonly message: NewMessage;
}

function writeTmp(ctx: MaildirContext, message: NewMessage): TmpFile {
  const body = toLfLineEndings(message.body);
  for (;;) {
    const tmpBase = newMaildirBaseName();
    const tmpPath = path.join(ctx.mailDir, "tmp", tmpBase);
    let fd: number;
    try {
      fd = createNewFile(tmpPath);
    } catch (err) {
      // Only a clock that went backwards repeats a name; make another.
      if ((err as NodeJS.ErrnoException).code === "EEXIST") continue;
      throw err;
    }
    try {
      fs.writeSync(fd, body);
      if (ctx.fsync) fs.fdatasyncSync(fd);
      if (message.receivedTime !== undefined) fs.futimesSync(fd, new Date(), new Date(message.receivedTime * 1000));
    } catch (err) {
      fs.closeSync(fd);
      fs.rmSync(tmpPath, { force: true });
      throw err;
    }
    fs.closeSync(fd);
    return { tmpPath, tmpBase, size: body.length, vsize: virtualSizeOf(body), message };
  }
}

/** The base name and `G` value of a saved file (see the module comment). */
function chooseBase(t: TmpFile, list: UidlistSnapshot, ctx: MaildirContext, used: Set<string>): { base: string; guid?: string } {
  const guid = t.message.guid;
  const generated = `${t.tmpBase},S=${t.size},W=${t.vsize}`;
  if (guid === undefined || guid === "") return { base: generated };
  const preservable = !/[/:\s]/.test(guid) && !guid.startsWith(".")
    && maildirFileNameSize(guid, "S") === t.size && maildirFileNameSize(guid, "W") === t.vsize
    && !list.byBase.has(guid) && !used.has(guid) && ctx.files.find(guid) === undefined;
  if (preservable) return { base: guid };
  // A GUID with white space cannot be stored in the uidlist; the file keeps a new one then.
  return /\s/.test(guid) ? { base: generated } : { base: generated, guid };
}

/**
 * Writes `messages` as `uids` (ascending, gaps allowed; see the module comment).
 * @returns the save, whose rollback removes the files and their uidlist lines.
 * @throws LockTimeoutError when the uidlist lock cannot be had; fs errors.
 *   Nothing is left behind on failure.
 */
export async function saveMaildirMessages(ctx: MaildirContext, state: IndexMapState, messages: readonly NewMessage[], uids: readonly number[]): Promise<PreparedSave> {
  const firstUid = uids[0];
  const tmps: TmpFile[] = [];
  const placed: Array<{ base: string; file: MaildirFile }> = [];
  let uidValidity = state.header.uidValidity;
  try {
    for (const m of messages) tmps.push(writeTmp(ctx, m));
    await ctx.withUidlistLock(ctx.settings.saveLockTimeoutMs ?? 10_000, async () => {
      const { list, moved } = makeRoomInUidlist(ctx, await openUidlist(ctx, state), state.header.nextUid, uids[uids.length - 1] + 1);
      uidValidity = list.header.uidValidity;
      const kw = ctx.keywords.table();
      const used = new Set<string>();
      const lines: UidlistRecord[] = [];
      const names = tmps.map((t, i) => {
        const { base, guid } = chooseBase(t, list, ctx, used);
        used.add(base);
        lines.push({ uid: uids[i], extensions: guid === undefined ? [] : [["G", guid]], fileName: base });
        const letters = keywordLetters(kw, t.message.keywords);
        return { base, name: formatMaildirFileName({ baseName: base, flags: t.message.flags, keywordIndexes: letters }), letters };
      });
      // Every letter a name uses must be in dovecot-keywords before the file appears.
      await kw.flush();
      tmps.forEach((t, i) => {
        const { base, name, letters } = names[i];
        const dir = (t.message.flags & 0x1f) === 0 && letters.length === 0 ? "new" : "cur";
        fs.renameSync(t.tmpPath, path.join(ctx.mailDir, dir, name));
        placed.push({ base, file: { dir, name } });
      });
      if (ctx.fsync) for (const dir of new Set(placed.map((p) => p.file.dir))) fsyncDir(path.join(ctx.mailDir, dir));
      ctx.uidlist.append(lines);
      ctx.uidlist.append(moved);
      for (const p of placed) ctx.files.put(p.base, p.file);
    });
  } catch (err) {
    for (const t of tmps) fs.rmSync(t.tmpPath, { force: true });
    for (const p of placed) fs.rmSync(path.join(ctx.mailDir, p.file.dir, p.file.name), { force: true });
    throw err;
  }
  return {
    // A mailbox made by `doveadm mailbox create` has no UIDVALIDITY in its index until
    // its first sync; Dovecot rejects an index with messages but none, so it comes along.
    records: state.header.uidValidity === 0 ? [uidValidityRecord(uidValidity)] : [],
    commit: async () => undefined,
    rollback: () => removeSaved(ctx, placed, firstUid),
  };
}

function uidValidityRecord(uidValidity: number): LogRecord {
  const data = new Uint8Array(4);
  new DataView(data.buffer).setUint32(0, uidValidity, true);
  return { type: "header-update", external: true, sync: false, patches: [{ offset: 24, data }] };
}

/** Letter indexes for keyword names (names beyond 26 letters stay index-only). */
function keywordLetters(kw: KeywordTable, names: readonly string[]): number[] {
  return names.map((n) => kw.indexFor(n)).filter((i): i is number => i !== undefined);
}

/**
 * The uidlist may hold records at or above `fromUid` (the index's next_uid)
 * that the log never got: a save rolled back, or a crash between uidlist
 * and log. Lines without a file are dropped; files that have one get UIDs after the new messages (no
 * client has seen their old UIDs) and are logged by the next sync.
 * @param afterUid the UID after the new messages' last.
 * @returns the list without them, and the renumbered records to append
 *   after the new messages' lines.
 */
function makeRoomInUidlist(ctx: MaildirContext, list: UidlistSnapshot, fromUid: number, afterUid: number): { list: UidlistSnapshot; moved: UidlistRecord[] } {
  const tail = list.records.filter((r) => r.uid >= fromUid);
  if (tail.length === 0) return { list, moved: [] };
  ctx.files.scan();
  let uid = Math.max(afterUid, snapshotNextUid(list));
  const moved = tail.filter((r) => ctx.files.find(maildirBaseName(r.fileName)) !== undefined).map((r) => ({ ...r, uid: uid++ }));
  // N keeps covering every logged UID (below fromUid); the dropped lines were never logged.
  const header = { ...list.header, nextUid: Math.max(list.header.nextUid, fromUid) };
  return { list: ctx.uidlist.recreate(header, list.records.filter((r) => r.uid < fromUid)), moved };
}

/**
 * Rollback: the files go, and so do their uidlist lines (best effort: a later
 * save or sync also cleans up). Runs while the commit's error is thrown
 * (MailboxTransaction.commit), so it never throws a second error over it.
 */
async function removeSaved(ctx: MaildirContext, placed: ReadonlyArray<{ base: string; file: MaildirFile }>, firstUid: number): Promise<void> {
  for (const p of placed) {
    fs.rmSync(path.join(ctx.mailDir, p.file.dir, p.file.name), { force: true });
    ctx.files.remove(p.base);
  }
  try {
    await ctx.withUidlistLock(ctx.settings.saveLockTimeoutMs ?? 10_000, async () => {
      const list = ctx.uidlist.read();
      if (!list) return;
      const ours = new Set(placed.map((p) => p.base));
      const rest = list.records.filter((r) => !(r.uid >= firstUid && ours.has(r.fileName)));
      if (rest.length !== list.records.length) ctx.uidlist.recreate(list.header, rest);
    });
  } catch (cleanupErr) {
    // Best-effort cleanup while the commit's error is thrown: that error is the one to
    // report. The next save renumbers or drops these lines (makeRoomInUidlist).
    void cleanupErr;
  }
}
