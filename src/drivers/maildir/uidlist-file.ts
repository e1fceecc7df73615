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
import { assert } from "../../errors.js";
import { maildirBaseName } from "./filename.js";
import { formatUidlist, formatUidlistHeader, formatUidlistRecord, parseUidlist, uidlistNextUid, type UidlistHeader, type UidlistRecord } from "./uidlist.js";

/** Dovecot's UIDLIST_COMPRESS_PERCENTAGE. */
const COMPRESS_PERCENTAGE = 75;

/**
 * The file as last read or written. Valid until the next write through the
 * same UidlistFile: appends extend its arrays and maps in place, so that
 * adding one record to a 100k-record list does not copy it.
 */
export interface UidlistSnapshot {
  readonly header: UidlistHeader;
  /** Records in UID order (a later line for the same base name replaced the earlier one). */
  readonly records: readonly UidlistRecord[];
  readonly byBase: ReadonlyMap<string, UidlistRecord>;
  readonly byUid: ReadonlyMap<number, UidlistRecord>;
  /** Record lines in the file, stale ones included (for Dovecot's rewrite rule). */
  readonly lineCount: number;
  /** A torn last line: appending after it would corrupt the file. */
  readonly torn: boolean;
  readonly sizeBytes: number;
  readonly mtimeNs: bigint;
  readonly ino: bigint;
}

function snapshotOf(header: UidlistHeader, records: readonly UidlistRecord[], lineCount: number, torn: boolean, st: fs.BigIntStats): UidlistSnapshot {
  const byBase = new Map<string, UidlistRecord>();
  const byUid = new Map<number, UidlistRecord>();
  for (const r of records) {
    byBase.set(maildirBaseName(r.fileName), r);
    byUid.set(r.uid, r);
  }
  // Our own copy: appends extend it in place.
  return { header, records: records.slice(), byBase, byUid, lineCount, torn, sizeBytes: Number(st.size), mtimeNs: st.mtimeNs, ino: st.ino };
}

/** @returns the UID the next new file gets (N, raised past the last record). */
export function snapshotNextUid(s: UidlistSnapshot): number {
  return uidlistNextUid(s);
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
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return (this.cache = undefined);
      throw err;
    }
    const c = this.cache;
    if (c && c.ino === st.ino && c.sizeBytes === Number(st.size) && c.mtimeNs === st.mtimeNs) return c;
    if (c && c.ino === st.ino && !c.torn && Number(st.size) > c.sizeBytes) {
      const grown = this.readAppended(c, st);
      if (grown) return (this.cache = grown);
    }
    const bytes = fs.readFileSync(this.path);
    const parsed = parseUidlist(bytes, this.path);
    const lines = countLines(bytes) - 1;
    return (this.cache = snapshotOf(parsed.header, parsed.records, Math.max(lines, 0), parsed.partialLine !== "", st));
  }

  /** Parses only what another process appended; undefined when a full read is needed. */
  private readAppended(c: UidlistSnapshot, st: fs.BigIntStats): UidlistSnapshot | undefined {
    const fd = fs.openSync(this.path, "r");
    let tail: Buffer;
    try {
      tail = Buffer.alloc(Number(st.size) - c.sizeBytes);
      fs.readSync(fd, tail, 0, tail.length, c.sizeBytes);
    } finally {
      fs.closeSync(fd);
    }
    const parsed = parseUidlist(formatUidlistHeader(c.header) + tail.toString("utf8"), this.path);
    const lastUid = c.records.at(-1)?.uid ?? 0;
    if (parsed.records.length > 0 && parsed.records[0].uid <= lastUid) return undefined;
    const replaced = new Set(parsed.records.map((r) => maildirBaseName(r.fileName)).filter((b) => c.byBase.has(b)));
    if (replaced.size > 0) {
      const kept = c.records.filter((r) => !replaced.has(maildirBaseName(r.fileName)));
      return snapshotOf(c.header, [...kept, ...parsed.records], c.lineCount + countLines(tail), parsed.partialLine !== "", st);
    }
    return extended(c, parsed.records, countLines(tail), parsed.partialLine !== "", st);
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
    fs.writeFileSync(tmp, formatUidlistHeader(header), { mode: 0o644 });
    try {
      if (this.fsync) {
        const fd = fs.openSync(tmp, "r");
        fs.fdatasyncSync(fd);
        fs.closeSync(fd);
      }
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
    const fd = fs.openSync(this.path, "a");
    try {
      fs.writeSync(fd, text);
      if (this.fsync) fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return (this.cache = extended(c, records, records.length, false, fs.statSync(this.path, { bigint: true })));
  }

  /** Rewrites the whole file (via `dovecot-uidlist.tmp`). */
  recreate(header: UidlistHeader, records: readonly UidlistRecord[]): UidlistSnapshot {
    this.writeWhole(formatUidlist({ header, records }));
    const st = fs.statSync(this.path, { bigint: true });
    return (this.cache = snapshotOf(header, records, records.length, false, st));
  }

  private writeWhole(text: string): void {
    const tmp = `${this.path}.tmp`;
    const fd = fs.openSync(tmp, "w", 0o644);
    try {
      fs.writeSync(fd, text);
      if (this.fsync) fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.path);
  }
}

/** `c` with `records` added in place (see UidlistSnapshot). */
function extended(c: UidlistSnapshot, records: readonly UidlistRecord[], addedLines: number, torn: boolean, st: fs.BigIntStats): UidlistSnapshot {
  const all = c.records as UidlistRecord[];
  const byBase = c.byBase as Map<string, UidlistRecord>;
  const byUid = c.byUid as Map<number, UidlistRecord>;
  for (const r of records) {
    all.push(r);
    byBase.set(maildirBaseName(r.fileName), r);
    byUid.set(r.uid, r);
  }
  return { ...c, lineCount: c.lineCount + addedLines, torn, sizeBytes: Number(st.size), mtimeNs: st.mtimeNs, ino: st.ino };
}

function countLines(bytes: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 10) n++;
  return n;
}
