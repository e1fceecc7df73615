/**
 * The message-by-message part of a Maildir sync (Dovecot's
 * maildir_sync_index()): index and dovecot-uidlist walked side by side in
 * UID order, each message's file compared, renamed or unlinked, new files
 * given UIDs. Runs with the uidlist lock held; writes dovecot-keywords and
 * dovecot-uidlist; returns what the log must say.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { IndexMapState } from "../../projections/state.js";
import { messageGuid128 } from "../dbox/guid.js";
import type { MaildirContext } from "./context.js";
import { maildirFilePath, type MaildirFile } from "./dir-scan.js";
import { compareMaildirFileNames, maildirBaseName, parseMaildirFileName, quickMaildirFlags, setMaildirFileNameFlags } from "./filename.js";
import { forEachIndexMessage, indexKeywords, type IndexMessage } from "./index-walk.js";
import type { KeywordTable } from "./keywords-table.js";
import { applyPendingOps, type PendingChanges, type PendingOp } from "./pending-changes.js";
import { emptyOutcome, type SyncOutcome } from "./sync-records.js";
import { renameStrays } from "./strays.js";
import { snapshotNextUid, uidlistRecreateNextUid, uidlistWantsRewrite, type UidlistSnapshot } from "./uidlist-file.js";
import { uidlistMessageGuid, type UidlistRecord } from "./uidlist.js";

const DIRTY = 0x80;
const SYSTEM_FLAGS = 0x1f;

export interface ReconcileRequest {
  /** Compare every message and look for new and vanished files; otherwise only pending and DIRTY ones. */
  readonly full: boolean;
  readonly pending: PendingChanges;
  /** Files to give fresh names first (duplicate or empty base names). */
  readonly strays: readonly MaildirFile[];
}

/** One walk's working set. */
class Reconciler {
  readonly out: SyncOutcome = emptyOutcome();
  /** Files accounted for by a uidlist record (the rest are new). */
  matched = 0;
  /** Uidlist records that stay meaningful (for Dovecot's rewrite rule). */
  readonly live: UidlistRecord[] = [];
  /** Records replaced by a new UID (a file that reappeared after its expunge). */
  readonly reborn = new Set<string>();
  readonly kw: KeywordTable;

  constructor(readonly ctx: MaildirContext, readonly state: IndexMapState, readonly list: UidlistSnapshot, readonly req: ReconcileRequest) {
    this.kw = ctx.keywords.table();
  }

  /**
   * Reconciles one message. Most messages need no I/O and are done
   * synchronously (undefined is returned: a promise per message of a 100k
   * mailbox would cost more than the comparison); for renames and unlinks the
   * work is returned, to be run after the walk, one message at a time.
   */
  message(m: IndexMessage, rec: UidlistRecord | undefined): (() => Promise<void>) | undefined {
    const ops = this.req.pending.get(m.uid);
    const dirty = (m.flags & DIRTY) !== 0;
    if (!this.req.full && !ops && !dirty) {
      if (rec) this.live.push(rec);
      return undefined;
    }
    if (!rec) {
      // The uidlist lost this message (Dovecot expunges it too).
      this.out.expunges.push(m.uid);
      return undefined;
    }
    const file = this.ctx.files.find(maildirBaseName(rec.fileName));
    if (!file) {
      if (!ops?.some((op) => op.kind === "expunge") || expungeGuidMatches(ops, rec)) this.out.expunges.push(m.uid);
      else this.live.push(rec);
      return undefined;
    }
    this.matched++;
    const quick = ops || dirty ? -1 : quickMaildirFlags(file.name);
    if (quick < 0) return () => this.slowMessage(m, rec, file, ops, dirty);
    // The common case, without parsing: no keyword letters, nothing requested.
    const seq = m.index + 1;
    this.live.push(rec);
    if (quick !== (m.flags & SYSTEM_FLAGS)) this.out.flagReplaces.push({ seq, uid: m.uid, add: quick, remove: SYSTEM_FLAGS & ~quick });
    if (m.hasKeywords) this.compareKeywords(seq, m.uid, [], indexKeywords(this.state, m));
    return undefined;
  }

  /** A message with keyword letters, requested changes or the DIRTY flag. */
  private async slowMessage(m: IndexMessage, rec: UidlistRecord, found: MaildirFile, ops: readonly PendingOp[] | undefined, dirty: boolean): Promise<void> {
    const base = maildirBaseName(rec.fileName);
    let file = found;
    if (ops?.some((op) => op.kind === "expunge")) {
      if (!expungeGuidMatches(ops, rec)) {
        this.live.push(rec);
        return;
      }
      await this.unlink(base, file);
      this.matched--;
      this.out.expunges.push(m.uid);
      return;
    }
    const seq = m.index + 1;
    const idxKeywords = indexKeywords(this.state, m);
    let parsed = parseMaildirFileName(file.name);
    let fileFlags = parsed.flags;
    let fileKeywords = parsed.keywordIndexes.map((i) => this.kw.nameOf(i));
    if (ops || dirty) {
      // Requested changes go onto the file's current flags; a DIRTY message's index flags win.
      const target = ops ? applyPendingOps(fileFlags, fileKeywords, ops) : { flags: m.flags & SYSTEM_FLAGS, keywords: idxKeywords };
      const renamed = await this.rename(base, file, target.flags, target.keywords);
      if (!renamed) {
        this.matched--;
        this.out.expunges.push(m.uid);
        return;
      }
      file = renamed;
      parsed = parseMaildirFileName(file.name);
      fileFlags = parsed.flags;
      fileKeywords = parsed.keywordIndexes.map((i) => this.kw.nameOf(i));
    }
    this.live.push(rec);
    if (fileFlags !== (m.flags & SYSTEM_FLAGS) || dirty) {
      this.out.flagReplaces.push({ seq, uid: m.uid, add: fileFlags, remove: (SYSTEM_FLAGS & ~fileFlags) | (dirty ? DIRTY : 0) });
    }
    this.compareKeywords(seq, m.uid, fileKeywords, idxKeywords);
  }

  /** Keywords the file and the index disagree on; index-only keywords (no letter) are left alone. */
  private compareKeywords(seq: number, uid: number, fileKeywords: readonly string[], idxKeywords: readonly string[]): void {
    if (fileKeywords.length === 0 && idxKeywords.length === 0) return;
    const inFile = new Set(fileKeywords.map((k) => k.toLowerCase()));
    const inIndex = new Set(idxKeywords.map((k) => k.toLowerCase()));
    for (const k of fileKeywords) if (!inIndex.has(k.toLowerCase())) this.out.keywordChanges.push({ seq, uid, name: k, add: true });
    for (const k of idxKeywords) {
      if (!inFile.has(k.toLowerCase()) && this.kw.existingIndex(k) !== undefined) this.out.keywordChanges.push({ seq, uid, name: k, add: false });
    }
  }

  /**
   * Renames the file to carry `flags` and `keywords` (names without a letter
   * stay index-only). A file renamed meanwhile by someone else is looked up
   * again, and the change applied to its new name.
   * @returns the file as it is now, or undefined when it is gone.
   */
  private async rename(base: string, file: MaildirFile, flags: number, keywords: readonly string[]): Promise<MaildirFile | undefined> {
    const letters = keywords.map((k) => this.kw.indexFor(k)).filter((i): i is number => i !== undefined);
    for (let attempt = 0; attempt < 3; attempt++) {
      const name = setMaildirFileNameFlags(file.name, flags, letters);
      if (name === file.name) return file;
      // Readers must know every letter before a file name uses it.
      await this.kw.flush();
      try {
        fs.renameSync(maildirFilePath(this.ctx.mailDir, file), path.join(this.ctx.mailDir, file.dir, name));
        const now = { dir: file.dir, name };
        this.ctx.files.put(base, now);
        return now;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
      this.ctx.files.reset();
      this.ctx.files.scan();
      const found = this.ctx.files.find(base);
      if (!found) return undefined;
      file = found;
    }
    return file;
  }

  /** Unlinks the message's file, found again if someone renamed it meanwhile. */
  private async unlink(base: string, file: MaildirFile): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        fs.unlinkSync(maildirFilePath(this.ctx.mailDir, file));
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
      this.ctx.files.reset();
      this.ctx.files.scan();
      const found = this.ctx.files.find(base);
      if (!found) break;
      file = found;
    }
    this.ctx.files.remove(base);
  }

  /** A uidlist record the index does not have. */
  uidlistOnly(rec: UidlistRecord): void {
    const base = maildirBaseName(rec.fileName);
    const file = this.ctx.files.find(base);
    if (!file) return; // a stale line: its message was expunged (or never logged)
    if (rec.uid >= this.state.header.nextUid) {
      // Written to the uidlist but never logged (a crash between the two): log it now.
      this.matched++;
      this.live.push(rec);
      this.out.appends.push({ uid: rec.uid, ...this.flagsOf(file) });
    } else {
      // "Expunged message reappeared, giving a new UID" (Dovecot): left unclaimed.
      this.reborn.add(base);
    }
  }

  flagsOf(file: MaildirFile): { flags: number; keywords: string[] } {
    const p = parseMaildirFileName(file.name);
    return { flags: p.flags, keywords: p.keywordIndexes.map((i) => this.kw.nameOf(i)) };
  }
}

function expungeGuidMatches(ops: readonly PendingOp[], rec: UidlistRecord): boolean {
  const guid = ops.find((op): op is Extract<PendingOp, { kind: "expunge" }> => op.kind === "expunge")?.guid;
  if (!guid || guid.every((b) => b === 0)) return true;
  const ours = messageGuid128(uidlistMessageGuid(rec));
  return ours.every((b, i) => b === guid[i]);
}

/**
 * Walks index and uidlist, renames/unlinks files, gives new files UIDs and
 * writes dovecot-keywords and dovecot-uidlist.
 * @returns what the log must record.
 */
export async function reconcileMessages(ctx: MaildirContext, state: IndexMapState, list: UidlistSnapshot, req: ReconcileRequest): Promise<SyncOutcome> {
  renameStrays(ctx, req.strays);
  const r = new Reconciler(ctx, state, list, req);
  const records = list.records;
  let j = 0;
  // Messages needing I/O are finished in order after the walk (renames in UID order).
  const slow: Array<() => Promise<void>> = [];
  forEachIndexMessage(state, (m) => {
    while (j < records.length && records[j].uid < m.uid) r.uidlistOnly(records[j++]);
    const rec = j < records.length && records[j].uid === m.uid ? records[j++] : undefined;
    const io = r.message(m, rec);
    if (io) slow.push(io);
  });
  while (j < records.length) r.uidlistOnly(records[j++]);
  for (const finish of slow) await finish();

  const added: UidlistRecord[] = [];
  if (req.full && ctx.files.count() > r.matched) {
    // Some files have no (live) uidlist record: new mail, or mail that reappeared.
    const fresh: Array<[string, MaildirFile]> = [];
    for (const [base, file] of ctx.files.entries()) if (!isRecorded(list, base, r.reborn)) fresh.push([base, file]);
    fresh.sort((a, b) => compareMaildirFileNames(a[1].name, b[1].name));
    let uid = Math.max(snapshotNextUid(list), state.header.nextUid, (r.out.appends.at(-1)?.uid ?? 0) + 1);
    for (const [base, file] of fresh) {
      added.push({ uid, extensions: [], fileName: base });
      r.out.appends.push({ uid, ...r.flagsOf(file) });
      uid++;
    }
  }
  await r.kw.flush();
  writeUidlist(ctx, list, r.live, added, state.header.nextUid);
  const logNext = Math.max(state.header.nextUid, (r.out.appends.at(-1)?.uid ?? 0) + 1);
  const listNext = snapshotNextUid(ctx.uidlist.read()!);
  if (listNext > logNext) r.out.nextUid = listNext;
  return r.out;
}

/** A base the uidlist knows (and that did not reappear after its expunge). */
function isRecorded(list: UidlistSnapshot, base: string, reborn: ReadonlySet<string>): boolean {
  return list.byBase.has(base) && !reborn.has(base);
}

/**
 * New records are appended; the file is rewritten instead when Dovecot
 * would: 75 % rule, a torn last line, or an N below the index's next UID
 * (maildir_sync_index() raises the uidlist's next_uid to the index's, which
 * marks it for recreation: a file whose N was lowered, by an older writer or
 * a recreated file, gets it back while the index still knows it).
 */
function writeUidlist(ctx: MaildirContext, list: UidlistSnapshot, live: readonly UidlistRecord[], added: readonly UidlistRecord[], indexNextUid: number): void {
  const lowN = indexNextUid > snapshotNextUid(list);
  const rewrite = list.torn || lowN || uidlistWantsRewrite(list.lineCount, added.length, live.length + added.length);
  if (rewrite && (added.length > 0 || live.length < list.records.length || lowN)) {
    const nextUid = Math.max(uidlistRecreateNextUid(list, indexNextUid), (added.at(-1)?.uid ?? 0) + 1);
    const records = [...live].sort((a, b) => a.uid - b.uid).concat(added);
    ctx.uidlist.recreate({ ...list.header, nextUid }, records);
  } else if (added.length > 0) {
    ctx.uidlist.append(added);
  }
}
