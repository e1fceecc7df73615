import * as fs from "node:fs";
import * as path from "node:path";
import { MailstoreError } from "../../shared/errors.js";
import { ByteWriter } from "../../log/bytes.js";
import { encodeTransactionInto } from "../../log/encode-file.js";
import { encodeLogHeader } from "../../log/header.js";
import { TransactionLog } from "../../log/log.js";
import { EXT_ID_BY_NAME, MailFlag, type LogRecord } from "../../log/types.js";
import { IndexWriter } from "../../index-io/writer.js";
import { readCheckpoint } from "../../index-io/checkpoint-file.js";
import { extension, highestModseq, lookupUid } from "../../projections/read.js";
import type { IndexMapState } from "../../projections/state.js";
import { listDboxFiles, sdboxFileName } from "../dbox/files.js";
import { generateGuid128 } from "../dbox/guid.js";
import { writePrivateFile } from "../../shared/file-mode.js";
import type { DboxLayout } from "../dbox/layout.js";

/** What a mailbox's rebuild found. */
export interface SdboxRebuildResult {
  messages: number;
  /** Where flags and keywords came from: the readable index, its backup, or nowhere (lost). */
  flagsFrom: "index" | "backup" | "none";
}

const DBOX_HDR_SIZE = 24;
const ext = { external: true, sync: false } as const;

/**
 * Rebuilds one sdbox mailbox's index from its `u.N` files (doveadm
 * force-resync): a new log (file_seq + 1, prev 0/0 = "state starts here")
 * holding the whole state as one EXTERNAL transaction. Flags and keywords
 * come from the old state when it is readable, else from
 * dovecot.index.backup (with a new UIDVALIDITY), else they are lost, as with
 * Dovecot; messages in
 * ALT get the BACKEND flag. Written under the old log's lock, then renamed
 * over `.log`, so other writers follow it like a rotation.
 */
export async function rebuildSdboxMailbox(layout: DboxLayout, name: string, newUidValidity: () => Promise<number>): Promise<SdboxRebuildResult> {
  const dir = layout.mailDir(name);
  const altDir = layout.altDir(name);
  const prefix = layout.indexPrefix(name);
  if (!fs.existsSync(dir)) throw new MailstoreError("NOT_FOUND", `mailbox ${name} does not exist`, { path: dir });
  // With INDEX=, the index directory may be what was lost.
  layout.makeIndexDirs(path.dirname(prefix));
  const writer = openReadableIndex(prefix);
  if (writer) {
    // The old state is read under the lock the new log is written under: no UID can be given meanwhile.
    try {
      return await writer.sync(async (sync) => {
        const log = writer.transactionLog;
        return rebuildFrom(dir, altDir, prefix, sync.state, "index", newUidValidity, { fileSeq: log.header.fileSeq + 1, initialModseq: log.highestModseq });
      }, "none");
    } finally {
      await writer.close();
    }
  }
  // The index is unreadable: flags come from dovecot.index.backup; the log's lock is still taken while it can be read.
  const old = readBackup(prefix);
  const from = old ? "backup" : "none";
  let log: TransactionLog | undefined;
  try {
    log = fs.existsSync(prefix + ".log") ? TransactionLog.open(prefix, { fsync: "always" }) : undefined;
  } catch (err) {
    if (!(err instanceof MailstoreError)) throw err;
    // The log itself is broken: nothing to lock or continue; replace it.
  }
  if (!log) {
    const next = { fileSeq: (old?.header.logFileSeq ?? 0) + 1, initialModseq: old ? maxBig(highestModseq(old), old.logModseq, 1n) : 1n };
    return rebuildFrom(dir, altDir, prefix, old, from, newUidValidity, next);
  }
  try {
    const held = log;
    return await held.holdLock(() => rebuildFrom(dir, altDir, prefix, old, from, newUidValidity, { fileSeq: held.header.fileSeq + 1, initialModseq: held.highestModseq }));
  } finally {
    await log.close();
  }
}

/** The index writer when the index can be read, else undefined (a typed error of a broken index). */
function openReadableIndex(prefix: string): IndexWriter | undefined {
  if (!fs.existsSync(prefix + ".log")) return undefined;
  try {
    return IndexWriter.open(prefix, { fsync: "always", keepsIndexBackup: true });
  } catch (err) {
    if (err instanceof MailstoreError) return undefined;
    throw err;
  }
}

/**
 * Writes the new log from the `u.N` files and `old` (see
 * rebuildSdboxMailbox), continuing the old log's file_seq and modseq.
 */
async function rebuildFrom(
  dir: string,
  altDir: string | undefined,
  prefix: string,
  old: IndexMapState | undefined,
  from: SdboxRebuildResult["flagsFrom"],
  newUidValidity: () => Promise<number>,
  next: { fileSeq: number; initialModseq: bigint },
): Promise<SdboxRebuildResult> {
  const primary = new Set((await listDboxFiles(dir, "sdbox")).map((f) => f.id));
  const alt = altDir && fs.existsSync(altDir) ? new Set((await listDboxFiles(altDir, "sdbox")).map((f) => f.id)) : new Set<number>();
  const found = [...new Set([...primary, ...alt])].sort((a, b) => a - b);
  const stale = from === "index" && old ? staleFiles(old, found, (uid) => [primary.has(uid) ? dir : undefined, alt.has(uid) ? altDir : undefined]) : new Set<number>();
  const uids = found.filter((uid) => !stale.has(uid));

  const hdr = new Uint8Array(DBOX_HDR_SIZE);
  const oldHdr = old ? extension(old, "dbox-hdr")?.hdrData : undefined;
  const rebuildCount = oldHdr && oldHdr.length >= 4 ? new DataView(oldHdr.buffer, oldHdr.byteOffset).getUint32(0, true) : 0;
  new DataView(hdr.buffer).setUint32(0, rebuildCount + 1, true);
  const oldGuid = oldHdr?.subarray(4, 20);
  hdr.set(oldGuid && oldGuid.some((b) => b !== 0) ? oldGuid : generateGuid128(), 4);
  // Only a state read through its log knows every UID handed out. The backup
  // (also what is read when dovecot.index lost its log) may predate UIDs given
  // and expunged since: with its UIDVALIDITY one of them could go to another
  // message, so a new one is taken, as the mdbox rebuild does.
  const uidValidity = (from === "index" ? old?.header.uidValidity : 0) || (await newUidValidity());
  const nextUid = Math.max(old?.header.nextUid ?? 1, (uids[uids.length - 1] ?? 0) + 1);

  const records: LogRecord[] = [
    { type: "ext-intro", ...ext, intros: [{ extId: EXT_ID_BY_NAME, resetId: 0, hdrSize: DBOX_HDR_SIZE, recordSize: 0, recordAlign: 0, flags: 0, name: "dbox-hdr" }] },
    { type: "ext-hdr", ...ext, patches: [{ offset: 0, data: hdr }] },
    { type: "header-update", ...ext, patches: [{ offset: 24, data: u32(uidValidity) }] },
  ];
  const keywordUids = new Map<string, number[]>();
  if (uids.length > 0) {
    records.push({
      type: "append", ...ext,
      messages: uids.map((uid) => {
        const r = old ? lookupUid(old, uid) : undefined;
        for (const k of r?.keywords ?? []) keywordUids.set(k, [...(keywordUids.get(k) ?? []), uid]);
        const flags = ((r?.flags ?? 0) & 0x1f) | (!primary.has(uid) ? MailFlag.BACKEND : 0);
        return { uid, flags };
      }),
    });
  }
  for (const [name, list] of keywordUids) records.push({ type: "keyword-update", ...ext, modifyType: "add", name, ranges: list.map((uid) => ({ uid1: uid, uid2: uid })) });
  if (nextUid > (uids[uids.length - 1] ?? 0) + 1) records.push({ type: "header-update", ...ext, patches: [{ offset: 28, data: u32(nextUid) }] });

  const write = (fileSeq: number, initialModseq: bigint) => {
    const out = new ByteWriter(4096);
    out.raw(encodeLogHeader({ indexId: old?.header.indexId || Math.floor(Date.now() / 1000), fileSeq, prevFileSeq: 0, prevFileOffset: 0, createStamp: Math.floor(Date.now() / 1000), initialModseq }));
    encodeTransactionInto(records, out);
    const tmp = `${prefix}.log.rebuild.${process.pid}`;
    writePrivateFile(tmp, out.result());
    fs.renameSync(tmp, prefix + ".log");
    // The old snapshot and rotated log describe a history this log replaces.
    fs.rmSync(prefix + ".log.2", { force: true });
    fs.rmSync(prefix, { force: true });
  };
  write(next.fileSeq, next.initialModseq);
  // Only once the new log no longer needs them: what a killed expunge or copy left (see staleFiles).
  for (const uid of stale) for (const d of [dir, altDir]) if (d) fs.rmSync(path.join(d, sdboxFileName(uid)), { force: true });
  return { messages: uids.length, flagsFrom: from };
}

/**
 * Files the readable log says are not messages, which Dovecot's rebuild
 * would bring back (it adds every u.N it finds):
 * - a UID below next_uid that the state does not have was expunged, and a
 *   kill came between the expunge's commit and the unlink that follows it;
 * - a UID at or past next_uid with more than one link is a copy's link
 *   whose commit never landed (its original is still in its mailbox; see
 *   SdboxMailboxBackend.adoptLeftovers).
 * A single-link file past next_uid is a killed save's, and is kept.
 */
function staleFiles(old: IndexMapState, found: readonly number[], dirsOf: (uid: number) => Array<string | undefined>): Set<number> {
  const stale = new Set<number>();
  for (const uid of found) {
    if (uid < old.header.nextUid) {
      if (!lookupUid(old, uid)) stale.add(uid);
      continue;
    }
    const links = dirsOf(uid).map((d) => (d ? fs.statSync(path.join(d, sdboxFileName(uid))).nlink : 0));
    if (Math.max(...links) > 1) stale.add(uid);
  }
  return stale;
}

/** dovecot.index.backup, or undefined when it is missing or unreadable (as good as none). */
function readBackup(prefix: string): IndexMapState | undefined {
  try {
    return readCheckpoint(prefix + ".backup");
  } catch (err) {
    if (err instanceof MailstoreError) return undefined;
    throw err;
  }
}

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

function maxBig(...xs: bigint[]): bigint {
  return xs.reduce((a, b) => (b > a ? b : a));
}
