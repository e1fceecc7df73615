/**
 * `dovecot-uidlist` (maildir-mbox.md A4): the UID of every Maildir file.
 *
 *     3 V<uidvalidity> N<next uid> G<mailbox guid>[ <key><value>…]\n
 *     <uid>[ <KEY><value>…] :<base file name>\n
 *
 * Version 1 (read for old files): `1 <uidvalidity> <next uid>\n` and
 * `<uid> <file name>\n`.
 *
 * Reading follows what makes Dovecot call the file broken (it then deletes
 * and rebuilds it; we throw MailCorruptedError with the line's byte offset):
 * no complete header line, a version other than 1 or 3, V or N missing or 0,
 * a G that is not 32 hex digits, a record whose UID is not followed by a space,
 * is 0, not above the previous one or ≥ 2^32−1, a v3 record without a file
 * name after `:`, a file name with `/`. Not broken, as in Dovecot: an
 * extension token not starting with A–Z is dropped (Dovecot then rewrites the
 * file); a second record for the same file name replaces the first; the last
 * line when it lacks its LF (a torn append, Dovecot reads lines only up to LF)
 * is not read but returned as `partialLine`.
 *
 * Writing is Dovecot's: header fields in the order V N G then the others as
 * read; a record's extension fields in their stored order; one space between
 * fields. So a file Dovecot wrote re-encodes byte for byte.
 */
import { MailCorruptedError } from "../../shared/errors.js";
import { assert } from "../../shared/errors.js";
import { maildirBaseName } from "./filename.js";

/** File name of the UID list in a mailbox's control directory. */
export const MAILDIR_UIDLIST_FILE_NAME = "dovecot-uidlist";

/** A `<KEY><value>` field; the key is one character. */
export type UidlistField = readonly [key: string, value: string];

export interface UidlistHeader {
  readonly version: 1 | 3;
  readonly uidValidity: number;
  /** N as written; may be lower than the UIDs appended after it. */
  readonly nextUid: number;
  /** Mailbox GUID, 32 lowercase hex digits (v3; Dovecot adds one when missing). */
  readonly guid?: string;
  /** Other header fields in file order (e.g. `P` POP3 UIDL format). */
  readonly extensions: readonly UidlistField[];
}

export interface UidlistRecord {
  readonly uid: number;
  /** Extension fields (`S` psize, `W` vsize, `G` guid, `P` UIDL, `O` POP3 order…), in file order. */
  readonly extensions: readonly UidlistField[];
  /** The base file name (v1 may hold a full name with `:2,…`). */
  readonly fileName: string;
}

export interface Uidlist {
  readonly header: UidlistHeader;
  readonly records: readonly UidlistRecord[];
}

export interface ParsedUidlist extends Uidlist {
  /** Bytes after the last LF (a torn append), not read; "" when none. */
  readonly partialLine: string;
  /** Extension tokens dropped because their key is not A–Z (Dovecot rewrites the file then). */
  readonly droppedExtensions: readonly string[];
  /** The records by base file name (made while reading: a caller may keep it as its own). */
  readonly byBase: Map<string, UidlistRecord>;
}

const MAX_UID = 0xfffffffe;
const decoder = new TextDecoder();

function leadingUint(s: string): { value: number; end: number } {
  let i = 0;
  let value = 0;
  while (i < s.length && s[i] >= "0" && s[i] <= "9") {
    value = value * 10 + (s.charCodeAt(i) - 48);
    i++;
  }
  return { value, end: i };
}

/** C strtoul() on a field value: leading digits, anything else read as far as it goes. */
function strtoul(s: string): number {
  const v = leadingUint(s.trimStart()).value;
  return v > 0xffffffff ? 0xffffffff : v;
}

/**
 * The complete lines of a uidlist text, one at a time, as positions in the
 * text (a 100k-line file is not split into strings first). The byte offset
 * a corruption error names is counted only when one is thrown.
 */
class LineReader {
  /** Start and end (at the LF) of the current line. */
  start = 0;
  end = -1;
  private lineNo = 0;
  constructor(
    readonly text: string,
    /** Where the complete lines end (after the last LF). */
    private readonly limit: number,
    private readonly path: string | undefined,
  ) {}
  /** @returns false after the last complete line. */
  advance(): boolean {
    const start = this.end + 1;
    if (start >= this.limit) return false;
    this.start = start;
    this.end = this.text.indexOf("\n", start);
    this.lineNo++;
    return true;
  }
  line(): string {
    return this.text.slice(this.start, this.end);
  }
  corrupted(message: string): MailCorruptedError {
    const offset = Buffer.byteLength(this.text.slice(0, this.start));
    return new MailCorruptedError(`dovecot-uidlist line ${this.lineNo}: ${message}`, { path: this.path, offset });
  }
}

/** The extensions of the many records that have none (one shared array). */
const NO_EXTENSIONS: readonly UidlistField[] = Object.freeze([]);

function parseHeader(line: string, r: LineReader): UidlistHeader {
  if (!/^[0-9] /.test(line)) throw r.corrupted("Corrupted header (invalid version number)");
  const version = line.charCodeAt(0) - 48;
  const rest = line.slice(2);
  if (version === 1) {
    const m = /^\s*(\d+)\s+(\d+)/.exec(rest);
    if (!m) throw r.corrupted("Corrupted header (version 1)");
    const header: UidlistHeader = { version: 1, uidValidity: Number(m[1]), nextUid: Number(m[2]), extensions: [] };
    if (header.uidValidity === 0 || header.nextUid === 0) throw r.corrupted(`Broken header (uidvalidity = ${header.uidValidity}, next_uid=${header.nextUid})`);
    return header;
  }
  if (version !== 3) throw r.corrupted(`Unsupported version ${version}`);
  let uidValidity = 0;
  let nextUid = 0;
  let guid: string | undefined;
  const extensions: UidlistField[] = [];
  let i = 0;
  while (i < rest.length) {
    const key = rest[i];
    let end = rest.indexOf(" ", i + 1);
    if (end < 0) end = rest.length;
    const value = rest.slice(i + 1, end);
    if (key === "V") uidValidity = strtoul(value);
    else if (key === "N") nextUid = strtoul(value);
    else if (key === "G") {
      if (!/^[0-9a-fA-F]{32}$/.test(value)) throw r.corrupted(`Invalid mailbox GUID: ${value}`);
      guid = value;
    } else extensions.push([key, value]);
    i = end;
    while (rest[i] === " ") i++;
  }
  if (uidValidity === 0 || nextUid === 0) throw r.corrupted(`Broken header (uidvalidity = ${uidValidity}, next_uid=${nextUid})`);
  return guid === undefined ? { version: 3, uidValidity, nextUid, extensions } : { version: 3, uidValidity, nextUid, guid, extensions };
}

function parseRecord(line: string, header: UidlistHeader, prevUid: number, r: LineReader, dropped: string[]): UidlistRecord {
  const { value: uid, end } = leadingUint(line);
  if (uid === 0 || line[end] !== " ") throw r.corrupted(`Invalid data: ${line.slice(end)}`);
  if (uid <= prevUid) throw r.corrupted(`UIDs not ordered (${uid} >= ${prevUid})`);
  if (uid > MAX_UID) throw r.corrupted(`UID too high (${uid})`);
  if (header.version === 1 && uid >= header.nextUid) throw r.corrupted(`UID larger than next_uid (${uid} >= ${header.nextUid})`);
  let i = end;
  while (line[i] === " ") i++;
  const extensions: UidlistField[] = [];
  if (header.version === 3) {
    while (i < line.length && line[i] !== ":") {
      let tokEnd = line.indexOf(" ", i);
      if (tokEnd < 0) tokEnd = line.length;
      const token = line.slice(i, tokEnd);
      if (token[0] >= "A" && token[0] <= "Z") extensions.push([token[0], token.slice(1)]);
      else dropped.push(token);
      i = tokEnd;
      while (line[i] === " ") i++;
    }
    if (line[i] === ":") i++;
    if (i >= line.length) throw r.corrupted(`Invalid extended fields: ${line.slice(i)}`);
  }
  const fileName = line.slice(i);
  if (fileName.includes("/")) throw r.corrupted(`Broken filename: ${fileName}`);
  return { uid, extensions: extensions.length > 0 ? extensions : NO_EXTENSIONS, fileName };
}

/**
 * Dovecot's usual v3 line, `<uid> :<name>` with no extension fields, read
 * in place; undefined for any other line (parseRecord() reads it, and
 * names what is wrong).
 */
function quickRecord(r: LineReader, prevUid: number): UidlistRecord | undefined {
  const { text, start, end } = r;
  let i = start;
  let uid = 0;
  for (let c = text.charCodeAt(i); c >= 48 && c <= 57; c = text.charCodeAt(++i)) uid = uid * 10 + (c - 48);
  if (i === start || i + 2 >= end || text.charCodeAt(i) !== 32 || text.charCodeAt(i + 1) !== 58 /* ":" */) return undefined;
  if (uid === 0 || uid <= prevUid || uid > MAX_UID) return undefined;
  const fileName = text.slice(i + 2, end);
  return fileName.includes("/") ? undefined : { uid, extensions: NO_EXTENSIONS, fileName };
}

/**
 * Parses a dovecot-uidlist file (bytes are read as UTF-8).
 * @returns header, records in UID order, and what was skipped.
 * @throws MailCorruptedError (path, byte offset of the line) where Dovecot
 *   would declare the file broken.
 */
export function parseUidlist(data: Uint8Array | string, path?: string): ParsedUidlist {
  const text = typeof data === "string" ? data : decoder.decode(data);
  const lastLf = text.lastIndexOf("\n");
  const partialLine = text.slice(lastLf + 1);
  const r = new LineReader(text, lastLf + 1, path);
  if (!r.advance()) throw r.corrupted("Corrupted header (no complete header line)");
  const header = parseHeader(r.line(), r);

  const records: UidlistRecord[] = [];
  const byName = new Map<string, UidlistRecord>();
  const dropped: string[] = [];
  let replaced = false;
  let prevUid = 0;
  while (r.advance()) {
    const rec = (header.version === 3 ? quickRecord(r, prevUid) : undefined) ?? parseRecord(r.line(), header, prevUid, r, dropped);
    prevUid = rec.uid;
    const key = maildirBaseName(rec.fileName);
    const old = byName.get(key);
    byName.set(key, rec);
    if (old === undefined) records.push(rec);
    else {
      // The file got a new UID (rare: a linear search is fine).
      records[records.indexOf(old)] = rec;
      replaced = true;
    }
  }
  // A replaced record moved to a later UID: keep the list in UID order.
  if (replaced) records.sort((a, b) => a.uid - b.uid);
  return { header, records, partialLine, droppedExtensions: dropped, byBase: byName };
}

/** @returns the line Dovecot writes for `rec` (with its LF); v1 writes `<uid> <name>`. */
export function formatUidlistRecord(rec: UidlistRecord, version: 1 | 3 = 3): string {
  assert(Number.isInteger(rec.uid) && rec.uid > 0 && rec.uid <= MAX_UID, `uidlist uid ${rec.uid}`);
  assert(!rec.fileName.includes("/") && !rec.fileName.includes("\n") && rec.fileName !== "", `uidlist file name ${rec.fileName}`);
  if (version === 1) return `${rec.uid} ${rec.fileName}\n`;
  let line = String(rec.uid);
  for (const [key, value] of rec.extensions) {
    assert(key.length === 1 && key >= "A" && key <= "Z" && !/[ \n]/.test(value), `uidlist extension ${key}${value}`);
    line += ` ${key}${value}`;
  }
  // Dovecot stores the base name: the part before any ':'.
  return `${line} :${maildirBaseName(rec.fileName)}\n`;
}

/** @returns the header line Dovecot writes (with its LF). */
export function formatUidlistHeader(header: UidlistHeader): string {
  assert(header.uidValidity > 0 && header.nextUid > 0, "uidlist header needs uidvalidity and next uid");
  if (header.version === 1) return `1 ${header.uidValidity} ${header.nextUid}\n`;
  let line = `3 V${header.uidValidity} N${header.nextUid}`;
  if (header.guid !== undefined) {
    assert(/^[0-9a-fA-F]{32}$/.test(header.guid), `mailbox guid ${header.guid}`);
    line += ` G${header.guid}`;
  }
  for (const [key, value] of header.extensions) line += ` ${key}${value}`;
  return `${line}\n`;
}

/** @returns the whole file (header and every record). */
export function formatUidlist(list: Uidlist): string {
  let out = formatUidlistHeader(list.header);
  let prev = 0;
  for (const rec of list.records) {
    assert(rec.uid > prev, `uidlist records must have increasing uids (${rec.uid} after ${prev})`);
    prev = rec.uid;
    out += formatUidlistRecord(rec, list.header.version);
  }
  return out;
}

/** @returns the value of extension `key` of `rec`, or undefined. */
export function uidlistRecordExtension(rec: UidlistRecord, key: string): string | undefined {
  return rec.extensions.find(([k]) => k === key)?.[1];
}

/**
 * @returns the next UID Dovecot uses: the header's N, raised past the last
 *   record (N is not rewritten when records are appended).
 */
export function uidlistNextUid(list: Uidlist): number {
  const last = list.records.at(-1)?.uid ?? 0;
  return Math.max(list.header.nextUid, last + 1);
}

/** @returns the message GUID of a record: its `G` extension, else the base file name. */
export function uidlistMessageGuid(rec: UidlistRecord): string {
  return uidlistRecordExtension(rec, "G") ?? maildirBaseName(rec.fileName);
}
