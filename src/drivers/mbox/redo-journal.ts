/**
 * A redo journal for the mbox writes that a kill could tear.
 *
 * Why. Linux looks for a fatal signal before each page it copies into the
 * page cache (generic_perform_write), so SIGKILL cuts a write() of a
 * regular file short at a page boundary. A window of an in-place rewrite
 * (in-place.ts) killed that way leaves new bytes up to a page and old ones
 * after it: a message cut in two, and when it moved by less than its own
 * size, its only whole copy gone. Seen in test/interop/mbox-crash.test.ts.
 *
 * How. A write that spans more than one page goes first into the journal
 * (a file in the mailbox's index directory, never in the mail directory
 * where Dovecot would take it for a mailbox): where it goes, its bytes, and
 * a SHA-1 over both. Then into the mbox; then the record is voided. The
 * next writer that breaks the killed writer's dotlock — so nobody has
 * written the mbox since — and finds that writer's whole record writes it
 * again: the mbox is then as after the interrupted write, which is a state
 * the rewrite allows between two windows. A torn record (the mbox write had
 * not begun) or one whose owner's lock somebody else broke (that program
 * may have changed the file since) is dropped. A write within one page
 * cannot be torn and skips the journal.
 *
 * With fsync the journal is made durable before the mbox is written, and
 * the mbox before the record is voided, so a power loss too leaves a
 * whole record or a whole write.
 *
 * Record (little-endian): "MSREDO01"; u16 owner length; owner (the dotlock
 * content `<pid>:<hostname>`); 48-bit offset; 48-bit length; 48-bit size to
 * truncate the file to afterwards (all ones: none); 20-byte SHA-1 of all
 * the above and the data; the data.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { openCreating } from "../../shared/file-mode.js";

/** The journal's name in the mailbox's index directory. */
export const MBOX_REDO_JOURNAL = "mailstore.mbox-redo";

/** The smallest page Linux has: a write inside one is never torn. */
export const PAGE_BYTES = 4096;

const MAGIC = Buffer.from("MSREDO01", "latin1");
/** What a voided record starts with (its magic zeroed). */
const NOT_A_RECORD = Buffer.alloc(MAGIC.length);
const NO_TRUNCATE = 2 ** 48 - 1;
const SHA1_BYTES = 20;

export interface RedoRecord {
  readonly owner: string;
  readonly offset: number;
  readonly data: Buffer;
  readonly truncateTo: number | undefined;
}

/** Linux's IOV_MAX: the most buffers one writev takes. */
const IOV_MAX = 1024;

function pwriteAll(fd: number, data: Uint8Array, at: number): void {
  let off = 0;
  while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off, at + off);
}

/**
 * Writes `parts` one after another from `at`, gathered by writev — a
 * rewrite's window is a thousand messages' views, written without first
 * being copied into one buffer.
 */
function pwritevAll(fd: number, parts: readonly Uint8Array[], at: number): void {
  let i = 0;
  let pos = at;
  while (i < parts.length) {
    const batch = parts.slice(i, i + IOV_MAX);
    const want = batch.reduce((a, b) => a + b.length, 0);
    const n = fs.writevSync(fd, batch, pos);
    if (n === want) {
      i += batch.length;
      pos += n;
      continue;
    }
    // A short write (rare): finish the part it stopped in, then go on from the next.
    let done = n;
    pos += n;
    while (done >= parts[i].length) done -= parts[i++].length;
    pwriteAll(fd, parts[i].subarray(done), pos);
    pos += parts[i].length - done;
    i++;
  }
}

function totalLength(parts: readonly Uint8Array[]): number {
  let n = 0;
  for (const p of parts) n += p.length;
  return n;
}

function withinOnePage(at: number, length: number): boolean {
  return length === 0 || Math.floor(at / PAGE_BYTES) === Math.floor((at + length - 1) / PAGE_BYTES);
}

/** @returns the record's bytes before its data (`parts`, one after another): everything up to and including the SHA-1. */
function encodeRedoHead(owner: string, offset: number, parts: readonly Uint8Array[], truncateTo: number | undefined): Buffer {
  const ownerBytes = Buffer.from(owner, "utf8");
  const head = Buffer.alloc(MAGIC.length + 2 + ownerBytes.length + 18);
  MAGIC.copy(head, 0);
  head.writeUInt16LE(ownerBytes.length, MAGIC.length);
  ownerBytes.copy(head, MAGIC.length + 2);
  const pos = MAGIC.length + 2 + ownerBytes.length;
  head.writeUIntLE(offset, pos, 6);
  head.writeUIntLE(totalLength(parts), pos + 6, 6);
  head.writeUIntLE(truncateTo ?? NO_TRUNCATE, pos + 12, 6);
  const hash = createHash("sha1").update(head);
  for (const p of parts) hash.update(p);
  return Buffer.concat([head, hash.digest()]);
}

export function encodeRedoRecord(record: RedoRecord): Buffer {
  return Buffer.concat([encodeRedoHead(record.owner, record.offset, [record.data], record.truncateTo), record.data]);
}

/**
 * @returns the record at the start of `bytes` (what follows it is left over
 *   from a longer earlier one), or undefined when there is no whole record
 *   there (torn, emptied, or not a journal).
 */
export function decodeRedoRecord(bytes: Buffer): RedoRecord | undefined {
  if (bytes.length < MAGIC.length + 2 || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const ownerLength = bytes.readUInt16LE(MAGIC.length);
  const fixed = MAGIC.length + 2 + ownerLength + 18;
  if (bytes.length < fixed + SHA1_BYTES) return undefined;
  const offset = bytes.readUIntLE(fixed - 18, 6);
  const length = bytes.readUIntLE(fixed - 12, 6);
  const truncateTo = bytes.readUIntLE(fixed - 6, 6);
  if (bytes.length < fixed + SHA1_BYTES + length) return undefined;
  const data = bytes.subarray(fixed + SHA1_BYTES, fixed + SHA1_BYTES + length);
  const sum = createHash("sha1").update(bytes.subarray(0, fixed)).update(data).digest();
  if (!sum.equals(bytes.subarray(fixed, fixed + SHA1_BYTES))) return undefined;
  return {
    owner: bytes.subarray(MAGIC.length + 2, MAGIC.length + 2 + ownerLength).toString("utf8"),
    offset,
    data,
    truncateTo: truncateTo === NO_TRUNCATE ? undefined : truncateTo,
  };
}

/** The journal of one write hold (see the module comment). */
export class RedoJournal {
  private fd = -1;

  /**
   * @param owner the hold's dotlock content, which recovery compares with the broken lock's.
   * @param fsync make each step durable before the next (Dovecot's mail_fsync ≠ never).
   */
  constructor(
    readonly path: string,
    private readonly owner: string,
    private readonly fsync: boolean,
  ) {}

  /**
   * Writes `data` at `at` in the file `target`, then cuts it at
   * `truncateTo` if given, as one step that a kill cannot leave half done
   * once recoverRedoJournal has run.
   */
  write(target: number, data: Uint8Array | readonly Uint8Array[], at: number, truncateTo?: number): void {
    const parts: readonly Uint8Array[] = data instanceof Uint8Array ? [data] : data;
    if (truncateTo === undefined && withinOnePage(at, totalLength(parts))) {
      pwritevAll(target, parts, at);
      return;
    }
    const head = encodeRedoHead(this.owner, at, parts, truncateTo);
    const fd = this.open();
    // Written over the last record, never truncated: cutting a file and filling it again
    // makes ext4 (auto_da_alloc) flush it; the length field says where this record ends.
    pwritevAll(fd, [head, ...parts], 0);
    if (this.fsync) fs.fdatasyncSync(fd);
    applyWrite(target, parts, at, truncateTo, this.fsync);
    // Done: the record goes (its magic zeroed, one write within a page).
    pwriteAll(fd, NOT_A_RECORD, 0);
    if (this.fsync) fs.fdatasyncSync(fd);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  private open(): number {
    if (this.fd < 0) this.fd = openCreating(this.path, fs.constants.O_RDWR);
    return this.fd;
  }
}

/** The write itself: `data` at `at`, then the cut, then (with fsync) made durable. */
function applyWrite(target: number, parts: readonly Uint8Array[], at: number, truncateTo: number | undefined, fsync: boolean): void {
  pwritevAll(target, parts, at);
  if (truncateTo !== undefined) fs.ftruncateSync(target, truncateTo);
  if (fsync) fs.fdatasyncSync(target);
}

/**
 * Run by a writer that has just taken the mbox's locks: writes again the
 * record a killed writer left, when this writer broke that writer's
 * dotlock, and empties a journal that holds a record in any case (a torn
 * one, or one that is not this writer's to replay).
 * Every hold runs this, so the common case costs one open and one small
 * read: a voided record (or an empty file) is recognised by its first bytes.
 * @param brokenOwner the content of the stale dotlock this writer broke (undefined: none).
 * @returns true when a write was replayed.
 */
export function recoverRedoJournal(journalPath: string, target: number, brokenOwner: string | undefined, fsync: boolean): boolean {
  let fd: number;
  try {
    fd = fs.openSync(journalPath, fs.constants.O_RDWR);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
  try {
    const magic = Buffer.alloc(MAGIC.length);
    if (fs.readSync(fd, magic, 0, magic.length, 0) < magic.length || !magic.equals(MAGIC)) return false;
    const record = decodeRedoRecord(fs.readFileSync(fd));
    const replay = record !== undefined && brokenOwner !== undefined && record.owner === brokenOwner;
    if (replay) applyWrite(target, [record.data], record.offset, record.truncateTo, fsync);
    fs.ftruncateSync(fd, 0);
    return replay;
  } finally {
    fs.closeSync(fd);
  }
}
