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
 * a checksum over both. Then into the mbox; then the record is voided —
 * or, between the windows of one rewrite, left for the next window's record
 * to replace (replaying a finished write again changes nothing; settle()
 * voids the last one before the hold ends or writes anything else). The
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
 * Record (little-endian): magic; u16 owner length; owner (the dotlock
 * content `<pid>:<hostname>`); 48-bit offset; 48-bit length; 48-bit size to
 * truncate the file to afterwards (all ones: none); the checksum of all the
 * above and the data; the data. The magic names the checksum: "MSREDO02" a
 * 4-byte CRC-32 (zlib's), "MSREDO01" a 20-byte SHA-1 (what Node without
 * zlib.crc32, before 20.15, writes, and what earlier versions wrote).
 *
 * Why CRC-32: it only has to tell a whole record from a torn one, not
 * resist forgery, and a rewrite checksums every byte it moves — SHA-1 cost
 * an expunge from a 199 MB mbox about 0.13 s of CPU, CRC-32 a fifth of it.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import { openCreating } from "../../shared/file-mode.js";

/** The journal's name in the mailbox's index directory. */
export const MBOX_REDO_JOURNAL = "mailstore.mbox-redo";

/** The smallest page Linux has: a write inside one is never torn. */
export const PAGE_BYTES = 4096;

const MAGIC_BYTES = 8;
/** What a voided record starts with (its magic zeroed). */
const NOT_A_RECORD = Buffer.alloc(MAGIC_BYTES);
const NO_TRUNCATE = 2 ** 48 - 1;

/** A record checksum, and the magic that names it. */
interface RecordSum {
  readonly magic: Buffer;
  readonly bytes: number;
  of(parts: readonly Uint8Array[]): Buffer;
}

/**
 * node:zlib, loaded on first use: it loads Node's ~25 stream modules (~7 ms
 * of CPU) that a command without an mbox rewrite never needs. Loaded for
 * real (not through the CLI bundle's lazy forwarders), so that its crc32 is
 * that of the Node running, not of the one that built the bundle.
 */
let zlibModule: typeof import("node:zlib") | undefined;
function zlib(): typeof import("node:zlib") {
  zlibModule ??= createRequire(import.meta.url)("node:zlib") as typeof import("node:zlib");
  return zlibModule;
}

const SHA1_SUM: RecordSum = {
  magic: Buffer.from("MSREDO01", "latin1"),
  bytes: 20,
  of: (parts) => {
    const hash = createHash("sha1");
    for (const p of parts) hash.update(p);
    return hash.digest();
  },
};

const CRC32_SUM: RecordSum = {
  magic: Buffer.from("MSREDO02", "latin1"),
  bytes: 4,
  of: (parts) => {
    let crc = 0;
    const { crc32 } = zlib();
    for (const p of parts) crc = crc32(p, crc);
    const out = Buffer.alloc(4);
    out.writeUInt32LE(crc >>> 0);
    return out;
  },
};

/** What new records use (see the module comment), decided at the first write. */
let writeSumChosen: RecordSum | undefined;
function writeSum(): RecordSum {
  writeSumChosen ??= typeof zlib().crc32 === "function" ? CRC32_SUM : SHA1_SUM;
  return writeSumChosen;
}

/** @returns the checksum `magic` names, or undefined when it names none (voided, or not a journal). */
function sumNamedBy(magic: Uint8Array): RecordSum | undefined {
  return [CRC32_SUM, SHA1_SUM].find((s) => s.magic.equals(magic));
}

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

/** @returns the record's bytes before its data (`parts`, one after another): everything up to and including the checksum. */
function encodeRedoHead(owner: string, offset: number, parts: readonly Uint8Array[], truncateTo: number | undefined, sum: RecordSum): Buffer {
  const ownerBytes = Buffer.from(owner, "utf8");
  const head = Buffer.alloc(MAGIC_BYTES + 2 + ownerBytes.length + 18);
  sum.magic.copy(head, 0);
  head.writeUInt16LE(ownerBytes.length, MAGIC_BYTES);
  ownerBytes.copy(head, MAGIC_BYTES + 2);
  const pos = MAGIC_BYTES + 2 + ownerBytes.length;
  head.writeUIntLE(offset, pos, 6);
  head.writeUIntLE(totalLength(parts), pos + 6, 6);
  head.writeUIntLE(truncateTo ?? NO_TRUNCATE, pos + 12, 6);
  return Buffer.concat([head, sum.of([head, ...parts])]);
}

/** @param checksum "sha1": a record as Node before 20.15 (and earlier versions) wrote it. */
export function encodeRedoRecord(record: RedoRecord, checksum: "crc32" | "sha1" = "crc32"): Buffer {
  const sum = checksum === "sha1" ? SHA1_SUM : CRC32_SUM;
  return Buffer.concat([encodeRedoHead(record.owner, record.offset, [record.data], record.truncateTo, sum), record.data]);
}

/**
 * @returns the record at the start of `bytes` (what follows it is left over
 *   from a longer earlier one), or undefined when there is no whole record
 *   there (torn, emptied, or not a journal).
 */
export function decodeRedoRecord(bytes: Buffer): RedoRecord | undefined {
  const sum = bytes.length >= MAGIC_BYTES + 2 ? sumNamedBy(bytes.subarray(0, MAGIC_BYTES)) : undefined;
  if (!sum) return undefined;
  const ownerLength = bytes.readUInt16LE(MAGIC_BYTES);
  const fixed = MAGIC_BYTES + 2 + ownerLength + 18;
  if (bytes.length < fixed + sum.bytes) return undefined;
  const offset = bytes.readUIntLE(fixed - 18, 6);
  const length = bytes.readUIntLE(fixed - 12, 6);
  const truncateTo = bytes.readUIntLE(fixed - 6, 6);
  if (bytes.length < fixed + sum.bytes + length) return undefined;
  const data = bytes.subarray(fixed + sum.bytes, fixed + sum.bytes + length);
  if (!sum.of([bytes.subarray(0, fixed), data]).equals(bytes.subarray(fixed, fixed + sum.bytes))) return undefined;
  return {
    owner: bytes.subarray(MAGIC_BYTES + 2, MAGIC_BYTES + 2 + ownerLength).toString("utf8"),
    offset,
    data,
    truncateTo: truncateTo === NO_TRUNCATE ? undefined : truncateTo,
  };
}

/** The journal of one write hold (see the module comment). */
export class RedoJournal {
  private fd = -1;
  /** The journal holds the record of a finished write (write()'s keepRecord). */
  private kept = false;

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
   * @param keepRecord the caller's next change to `target` is another
   *   journaled write, or settle(): the record is not voided now (a small
   *   write and an fdatasync saved per window of a rewrite).
   */
  write(target: number, data: Uint8Array | readonly Uint8Array[], at: number, truncateTo?: number, keepRecord = false): void {
    const parts: readonly Uint8Array[] = data instanceof Uint8Array ? [data] : data;
    if (truncateTo === undefined && withinOnePage(at, totalLength(parts))) {
      // A replay of the kept record would undo this write.
      this.settle();
      pwritevAll(target, parts, at);
      return;
    }
    // Replaced by this record (a torn one is dropped; the kept one's write is finished).
    this.kept = false;
    const head = encodeRedoHead(this.owner, at, parts, truncateTo, writeSum());
    const fd = this.open();
    // Written over the last record, never truncated: cutting a file and filling it again
    // makes ext4 (auto_da_alloc) flush it; the length field says where this record ends.
    pwritevAll(fd, [head, ...parts], 0);
    if (this.fsync) fs.fdatasyncSync(fd);
    applyWrite(target, parts, at, truncateTo, this.fsync);
    this.kept = true;
    if (!keepRecord) this.settle();
  }

  /** Voids a finished write's record still in the journal (its magic zeroed, one write within a page). */
  settle(): void {
    if (!this.kept) return;
    pwriteAll(this.fd, NOT_A_RECORD, 0);
    if (this.fsync) fs.fdatasyncSync(this.fd);
    this.kept = false;
  }

  /** Voids a kept record, and closes the journal. */
  close(): void {
    this.settle();
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
    const magic = Buffer.alloc(MAGIC_BYTES);
    if (fs.readSync(fd, magic, 0, magic.length, 0) < magic.length || !sumNamedBy(magic)) return false;
    const record = decodeRedoRecord(fs.readFileSync(fd));
    const replay = record !== undefined && brokenOwner !== undefined && record.owner === brokenOwner;
    if (replay) applyWrite(target, [record.data], record.offset, record.truncateTo, fsync);
    fs.ftruncateSync(fd, 0);
    return replay;
  } finally {
    fs.closeSync(fd);
  }
}
