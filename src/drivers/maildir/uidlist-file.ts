/**
 * The dovecot-uidlist file of one mailbox: cached reading and the three ways
 * Dovecot writes it (maildir-uidlist.c), all with the uidlist dotlock held by
 * the caller:
 *
 * - create: a new file with just the header;
 * - append: new records are written at the end (the header, N included, is
 *   left alone), which is how every save and sync normally grows it;
 * - recreate: the whole file is written to `dovecot-uidlist.tmp` and renamed
 *   over it (observed with strace), when records must go or the header
 *   changes.
 *
 * Reading is cached by (inode, size, mtime): a 100k-line file costs a parse
 * only when it changed, and when another process only appended, only the
 * new lines are parsed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert } from "../../shared/errors.js";
import { createPrivateFile, writePrivateFile } from "../../shared/file-mode.js";
import { maildirBaseName } from "./filename.js";
import { formatUidlist, formatUidlistHeader, formatUidlistRecord, parseUidlist, uidlistNextUid, type UidlistHeader, type UidlistRecord } from "./uidlist.js";

/** Dovecot's UIDLIST_COMPRESS_PERCENTAGE. */
const COMPRESS_PERCENTAGE = 75;

/**
 * The file as last read or written. Valid until the next write through the
 * same UidlistFile: appends extend its records in place, so that adding one
 * record to a 100k-record list does not copy it. The by-name map is the
 * parse's, or built when first asked for.
 */
export class UidlistSnapshot {
  constructor(
    readonly header: UidlistHeader,
    /** Records in UID order (a later line for the same base name replaced the earlier one). */
    private readonly list: UidlistRecord[],
    /** Record lines in the file, stale ones included (for Dovecot's rewrite rule). */
    readonly lineCount: number,
    /** A torn last line: appending after it would corrupt the file. */
    readonly torn: boolean,
    readonly sizeBytes: number,
    readonly mtimeNs: bigint,
    readonly ino: bigint,
    /** Records by base name: the parse's map, else made when first asked for. */
    private base?: Map<string, UidlistRecord>,
  ) {}

  get records(): readonly UidlistRecord[] {
    return this.list;
  }

  /** Records by base file name. */
  get byBase(): ReadonlyMap<string, UidlistRecord> {
    if (!this.base) {
      this.base = new Map();
      for (const r of this.list) this.base.set(maildirBaseName(r.fileName), r);
    }
    return this.base;
  }

  /** The record of `uid` (binary search), or undefined. */
  recordOf(uid: number): UidlistRecord | undefined {
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.list[mid].uid < uid) lo = mid + 1;
      else hi = mid;
    }
    return this.list[lo]?.uid === uid ? this.list[lo] : undefined;
  }

  /** This list with `records` (higher UIDs) added in place, and the file's new stamp. */
  extendedBy(records: readonly UidlistRecord[], addedLines: number, torn: boolean, st: fs.BigIntStats): UidlistSnapshot {
    for (const r of records) {
      this.list.push(r);
      this.base?.set(maildirBaseName(r.fileName), r);
    }
    const next = new UidlistSnapshot(this.header, this.list, this.lineCount + addedLines, torn, Number(st.size), st.mtimeNs, st.ino);
    next.base = this.base;
    return next;
  }
}

function snapshotOf(header: UidlistHeader, records: readonly UidlistRecord[], lineCount: number, torn: boolean, st: fs.BigIntStats, byBase?: Map<string, UidlistRecord>): UidlistSnapshot {
  // Our own copy: appends extend it in place.
  return new UidlistSnapshot(header, records.slice(), lineCount, torn, Number(st.size), st.mtimeNs, st.ino, byBase);
}

/** @returns the UID the next new file gets (N, raised past the last record). */
export function snapshotNextUid(s: UidlistSnapshot): number {
  return uidlistNextUid(s);
}

/**
 * The N a recreated file must carry: Dovecot writes its in-memory next_uid,
 * which is the header's N raised past every line it read (expunged ones
 * included, maildir_uidlist_update_read()) and past the index's next_uid
 * (maildir_sync_index() calls maildir_uidlist_set_next_uid(hdr->next_uid)).
 * So dropping the lines of expunged messages never lowers N, and a UID
 * once used is not given again after the index is lost (observed: three
 * saves, expunge of UID 3 -> the file is recreated with N4).
 */
export function uidlistRecreateNextUid(s: UidlistSnapshot, indexNextUid: number): number {
  return Math.max(snapshotNextUid(s), indexNextUid);
}

/**
 * Dovecot's maildir_uidlist_want_compress(): rewrite the file once
 * `(lines read + lines added) × 75 %` no longer exceeds the records still
 * alive. Observed: 8 lines, 2 expunged → rewritten; 1 expunged → appended to.
 */
export function uidlistWantsRewrite(lineCount: number, addedCount: number, liveCount: number): boolean {
  return Math.floor(((lineCount + addedCount) * COMPRESS_PERCENTAGE) / 100) >= liveCount;
}

export class UidlistFile {
  private cache: UidlistSnapshot | undefined;
  /**
   * The file last read, kept open as Dovecot keeps it: while we hold it, its
   * inode number cannot be given to a file that replaces it, so "same inode,
   * grown" really means "appended to" and only the new lines are read.
   */
  private held: { fd: number; ino: bigint } | undefined;

  constructor(readonly path: string, private readonly fsync: boolean) {}

  /**
   * @returns the current content, or undefined when the file does not exist.
   * @throws MailCorruptedError where Dovecot would call the file broken.
   */
  read(): UidlistSnapshot | undefined {
    let st: fs.BigIntStats;
    try {
      st = fs.statSync(this.path, { bigint: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      this.close();
      return undefined;
    }
    if (this.held && this.held.ino !== st.ino) this.close();
    if (!this.held) {
      try {
        this.hold();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw err;
      }
    }
    const held = this.held!;
    st = fs.fstatSync(held.fd, { bigint: true });
    const c = this.cache;
    if (c && c.sizeBytes === Number(st.size) && c.mtimeNs === st.mtimeNs) return c;
    if (c && !c.torn && Number(st.size) > c.sizeBytes) {
      const grown = this.readAppended(c, st);
      if (grown) return (this.cache = grown);
    }
    const bytes = readRange(held.fd, 0, Number(st.size));
    const parsed = parseUidlist(bytes, this.path);
    const lines = countLines(bytes) - 1;
    return (this.cache = snapshotOf(parsed.header, parsed.records, Math.max(lines, 0), parsed.partialLine !== "", st, parsed.byBase));
  }

  /** Closes the held file (the next read opens it again). */
  close(): void {
    if (this.held) fs.closeSync(this.held.fd);
    this.held = undefined;
    this.cache = undefined;
  }

  private hold(): void {
    const fd = fs.openSync(this.path, "r");
    this.held = { fd, ino: fs.fstatSync(fd, { bigint: true }).ino };
    this.cache = undefined;
  }

  /** Parses only what another process appended; undefined when a full read is needed. */
  private readAppended(c: UidlistSnapshot, st: fs.BigIntStats): UidlistSnapshot | undefined {
    const tail = readRange(this.held!.fd, c.sizeBytes, Number(st.size));
    const parsed = parseUidlist(formatUidlistHeader(c.header) + tail.toString("utf8"), this.path);
    const lastUid = c.records.at(-1)?.uid ?? 0;
    if (parsed.records.length > 0 && parsed.records[0].uid <= lastUid) return undefined;
    const replaced = new Set(parsed.records.map((r) => maildirBaseName(r.fileName)).filter((b) => c.byBase.has(b)));
    if (replaced.size > 0) {
      const kept = c.records.filter((r) => !replaced.has(maildirBaseName(r.fileName)));
      return snapshotOf(c.header, [...kept, ...parsed.records], c.lineCount + countLines(tail), parsed.partialLine !== "", st);
    }
    return c.extendedBy(parsed.records, countLines(tail), parsed.partialLine !== "", st);
  }

  /**
   * Writes a new file with `header` and no records, unless one exists: the
   * content is linked into place, so of two racing creators one wins and
   * the other reads the winner's file (no lock needed).
   * @returns the file as it is then.
   */
  create(header: UidlistHeader): UidlistSnapshot {
    const existing = this.read();
    if (existing) return existing;
    const tmp = `${this.path}.new.${process.pid}`;
    writePrivateFile(tmp, Buffer.from(formatUidlistHeader(header)), this.fsync);
    try {
      fs.linkSync(tmp, this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    return this.read()!;
  }

  /**
   * Appends `records` (UIDs above every record in the file). A torn last
   * line would swallow the first new record, so then the file is recreated.
   */
  append(records: readonly UidlistRecord[]): UidlistSnapshot {
    const c = this.read();
    assert(c !== undefined, "dovecot-uidlist must exist before records are appended");
    if (records.length === 0) return c;
    assert(records[0].uid > (c.records.at(-1)?.uid ?? 0), "appended uidlist records must have higher UIDs");
    if (c.torn) return this.recreate(c.header, [...c.records, ...records]);
    const text = records.map((r) => formatUidlistRecord(r)).join("");
    // No O_CREAT: a file removed meanwhile is not recreated headerless (nor as ours, made by root).
    const fd = fs.openSync(this.path, fs.constants.O_WRONLY | fs.constants.O_APPEND);
    try {
      fs.writeSync(fd, text);
      if (this.fsync) fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return (this.cache = c.extendedBy(records, records.length, false, fs.fstatSync(this.held!.fd, { bigint: true })));
  }

  /**
   * Rewrites the whole file (via `dovecot-uidlist.tmp`). N is written as
   * Dovecot's recreate writes it, never below the last record + 1 (its
   * in-memory next_uid always is); the caller passes the N that covers the
   * records it drops (uidlistRecreateNextUid()).
   */
  recreate(header: UidlistHeader, records: readonly UidlistRecord[]): UidlistSnapshot {
    header = { ...header, nextUid: Math.max(header.nextUid, (records.at(-1)?.uid ?? 0) + 1) };
    this.writeWhole(formatUidlist({ header, records }));
    this.close();
    this.hold();
    return (this.cache = snapshotOf(header, records, records.length, false, fs.fstatSync(this.held!.fd, { bigint: true })));
  }

  private writeWhole(text: string): void {
    const tmp = `${this.path}.tmp`;
    // Ours while we hold the uidlist lock.
    const fd = createPrivateFile(tmp);
    try {
      fs.writeSync(fd, text);
      if (this.fsync) fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.path);
  }
}

function readRange(fd: number, from: number, to: number): Buffer {
  const out = Buffer.alloc(Math.max(0, to - from));
  let done = 0;
  while (done < out.length) {
    const n = fs.readSync(fd, out, done, out.length - done, from + done);
    if (n === 0) break;
    done += n;
  }
  return done === out.length ? out : out.subarray(0, done);
}

function countLines(bytes: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 10) n++;
  return n;
}
