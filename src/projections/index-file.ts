/**
 * dovecot.index ↔ index map state, byte for byte as Dovecot 2.3 lays it out
 * (index-file.md §2-§6): the 120-byte base header, the extension area (each
 * entry: struct mail_index_ext_header, name, padding to 8, header data padded
 * to 8), then messages_count records of record_size bytes. Pure: no I/O.
 */
import { freeze } from "immer";
import { assert, IndexCorruptedError } from "../shared/errors.js";
import { MailFlag } from "../log/types.js";
import {
  BASE_HEADER_SIZE,
  BASE_RECORD_SIZE,
  INDEX_COMPAT_LITTLE_ENDIAN,
  INDEX_MAJOR_VERSION,
  INDEX_MINOR_VERSION,
  IndexHeaderFlag,
  readBaseHeader,
  writeBaseHeader,
  type IndexBaseHeader,
  type IndexHeader,
} from "./base-header.js";
import { parseKeywordsHeader } from "./apply-keywords.js";
import { headerHighestModseq } from "./apply-modseq.js";
import { EXT_HEADER_MAX_SIZE, EXT_RECORD_MAX_SIZE, KEYWORDS_EXT_NAME } from "./ext-registry.js";
import { align8, EXT_HEADER_FIXED_SIZE, extDataOffset, fullHeader } from "./header-layout.js";
import { LEAF_RECORDS, RecordStore } from "./record-store.js";
import type { ExtensionInfo, IndexMapState } from "./state.js";

/** Dovecot's str_sanitize keeps printable ASCII; anything else marks a broken name. */
const PRINTABLE_NAME = /^[\x20-\x7e]+$/;

/**
 * Decodes dovecot.index bytes. Throws IndexCorruptedError (with `path` and
 * the offending offset) for anything Dovecot would refuse or repair: wrong
 * version or byte order, the CORRUPTED flag, inconsistent sizes, broken
 * extension entries, a header that contradicts its records (uids not
 * ascending or not below next_uid, counters that do not match).
 * `adopt`: `bytes` are the caller's to give away (never written again); the
 * records are views of them instead of a copy.
 */
export function decodeIndexFile(bytes: Uint8Array, path: string, options: { adopt?: boolean } = {}): IndexMapState {
  const head = decodeIndexHead(bytes, bytes.length, path);
  const { hdr, fail } = head;
  const records = RecordStore.fromRows(bytes, hdr.headerSize, hdr.messagesCount, hdr.recordSize, options.adopt === true);
  const counts = checkRecords(records, hdr, fail);
  return stateOf(head, records, counts.dirty);
}

/**
 * decodeIndexFile from the header area alone (`head`: the file's first
 * bytes, at least header_size of them when the file has that many;
 * `fileSize`: the whole file's), with every check that needs only the
 * header; the records are a lazy store (RecordStore.lazy) that calls
 * `readRows()` for the record bytes (from header_size on) on first access to any
 * row, then checks them as decodeIndexFile does (uids, the seen/deleted
 * counters) before anything reads or folds them: a broken row or counter
 * is an IndexCorruptedError naming file and offset, thrown there.
 * Undefined when the header has HAVE_DIRTY: the state's DIRTY count is
 * counted from the rows, so they are needed now (read the file whole).
 */
export function decodeIndexFileLazy(
  head: Uint8Array,
  fileSize: number,
  path: string,
  readRows: () => Uint8Array,
  readPart?: (offset: number, length: number) => Uint8Array,
  release?: () => void,
): IndexMapState | undefined {
  const decoded = decodeIndexHead(head, fileSize, path);
  const { hdr, fail } = decoded;
  if (hdr.flags & IndexHeaderFlag.HAVE_DIRTY) return undefined;
  if (readPart) checkLastUid(readPart, hdr, fail);
  const records = RecordStore.lazy(hdr.recordSize, hdr.messagesCount, () => {
    const rows = readRows();
    assert(rows.length === hdr.messagesCount * hdr.recordSize, `${rows.length} bytes of records`);
    const store = RecordStore.fromRows(rows, 0, hdr.messagesCount, hdr.recordSize, true);
    // Against the header this file was written with (captured here), not a later state's.
    const row = checkRecords(store, hdr, fail);
    // The state said 0 DIRTY rows (no HAVE_DIRTY): a DIRTY row would make that count wrong.
    if (row.dirty > 0) throw fail(`a record is DIRTY but the header has no HAVE_DIRTY`, 20);
    return store;
  }, readPart && ((l) => readLeafChecked(readPart, hdr, l, fail)), release);
  return stateOf(decoded, records, 0);
}

/**
 * The last row's uid against the header, read alone (4 bytes): a next_uid
 * at or below a row's uid would otherwise be answered from the header (a
 * status' UIDNEXT) until something reads every row, where the whole read
 * at open found it. Uids ascend from 1, so the last is at least the count.
 */
function checkLastUid(
  readPart: (offset: number, length: number) => Uint8Array,
  hdr: IndexHeader,
  fail: (message: string, offset: number) => IndexCorruptedError,
): void {
  if (hdr.messagesCount === 0) return;
  const at = hdr.headerSize + (hdr.messagesCount - 1) * hdr.recordSize;
  const bytes = readPart(at, 4);
  const uid = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  if (uid >= hdr.nextUid || uid < hdr.messagesCount) {
    throw fail(`record ${hdr.messagesCount} (the last) has uid ${uid} (next_uid ${hdr.nextUid}, ${hdr.messagesCount} records)`, at);
  }
}

/**
 * Leaf `l`'s rows (LEAF_RECORDS of them, fewer in the last) for a point
 * lookup before the rest are read, checked alone: uids ascending and below
 * next_uid, no DIRTY row. What needs every row (the order across leaves,
 * the counters) is checked when they are all read, before any fold.
 */
function readLeafChecked(
  readPart: (offset: number, length: number) => Uint8Array,
  hdr: IndexHeader,
  l: number,
  fail: (message: string, offset: number) => IndexCorruptedError,
): Uint8Array {
  const rs = hdr.recordSize;
  const first = l * LEAF_RECORDS;
  const n = Math.min(LEAF_RECORDS, hdr.messagesCount - first);
  const at = hdr.headerSize + first * rs;
  const rows = readPart(at, n * rs);
  const words = new Uint32Array(rows.buffer, rows.byteOffset, rows.length >>> 2);
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const uid = words[(i * rs) >>> 2];
    if (uid <= prev || uid >= hdr.nextUid) throw fail(`record ${first + i + 1} has uid ${uid} after ${prev} (next_uid ${hdr.nextUid})`, at + i * rs);
    if (rows[i * rs + 4] & MailFlag.DIRTY) throw fail(`a record is DIRTY but the header has no HAVE_DIRTY`, at + i * rs);
    prev = uid;
  }
  return rows;
}

/** What decodeIndexHead read: the header, its extensions, and how to report a broken file. */
interface IndexHead {
  hdr: IndexHeader;
  extensions: ExtensionInfo[];
  keywords: string[];
  baseHeaderExtra: Uint8Array;
  fail: (message: string, offset: number) => IndexCorruptedError;
}

/** The header area's checks: `bytes` holds at least min(header_size, fileSize) bytes of a file of `fileSize`. */
function decodeIndexHead(bytes: Uint8Array, fileSize: number, path: string): IndexHead {
  const fail = (message: string, offset: number): IndexCorruptedError => new IndexCorruptedError(message, { path, offset });
  if (fileSize < BASE_HEADER_SIZE) throw fail(`file of ${fileSize} bytes is shorter than the base header`, 0);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hdr = readBaseHeader(view, 0);
  if (hdr.majorVersion !== INDEX_MAJOR_VERSION) throw fail(`major version ${hdr.majorVersion}, expected ${INDEX_MAJOR_VERSION}`, 0);
  if (hdr.minorVersion < 2) throw fail(`minor version ${hdr.minorVersion} is too old to upgrade`, 1);
  if (hdr.compatFlags !== INDEX_COMPAT_LITTLE_ENDIAN) throw fail(`compat_flags ${hdr.compatFlags}: CPU architecture changed`, 12);
  if (hdr.flags & IndexHeaderFlag.CORRUPTED) throw fail("Header's corrupted flag is set", 20);
  if (hdr.baseHeaderSize < BASE_HEADER_SIZE || hdr.headerSize < hdr.baseHeaderSize) {
    throw fail(`Corrupted header sizes (base ${hdr.baseHeaderSize}, full ${hdr.headerSize})`, 2);
  }
  if (hdr.headerSize > fileSize) throw fail(`Header size is larger than file (${hdr.headerSize} > ${fileSize})`, 4);
  if (hdr.recordSize < BASE_RECORD_SIZE || hdr.recordSize % 4 !== 0) throw fail(`record_size ${hdr.recordSize}`, 8);
  const recordsEnd = hdr.headerSize + hdr.messagesCount * hdr.recordSize;
  if (recordsEnd > fileSize) throw fail(`messages_count ${hdr.messagesCount} too large for a ${fileSize}-byte file`, 32);
  assert(bytes.length >= hdr.headerSize, `${bytes.length} bytes of a ${hdr.headerSize}-byte header area`);

  const extensions = decodeExtensions(bytes, view, hdr, fail);
  checkHeader(hdr, fail);

  let keywords: string[] = [];
  const kwExt = extensions.find((e) => e.name === KEYWORDS_EXT_NAME);
  if (kwExt !== undefined) {
    const parsed = parseKeywordsHeader(kwExt.hdrData, kwExt.hdrSize);
    if (typeof parsed === "string") throw fail(parsed, hdr.baseHeaderSize);
    keywords = parsed;
  }
  return { hdr, extensions, keywords, baseHeaderExtra: bytes.slice(BASE_HEADER_SIZE, hdr.baseHeaderSize), fail };
}

function stateOf(head: IndexHead, records: RecordStore, dirtyCount: number): IndexMapState {
  const { headerSize: _h, recordSize: _r, messagesCount: _m, ...stored } = head.hdr;
  const header: IndexBaseHeader =
    head.hdr.minorVersion === 2
      ? { ...stored, minorVersion: INDEX_MINOR_VERSION, unusedOldSyncSizePart1: 0 } // Dovecot's silent v2.2 upgrade
      : stored;
  return freeze(
    {
      header,
      baseHeaderExtra: head.baseHeaderExtra,
      extensions: head.extensions,
      keywords: head.keywords,
      records,
      logModseq: headerHighestModseq(head.extensions),
      currentExt: null,
      deleted: false,
      deleteRequested: false,
      dirtyCount,
    },
    true,
  );
}

function decodeExtensions(
  bytes: Uint8Array,
  view: DataView,
  hdr: IndexHeader,
  fail: (message: string, offset: number) => IndexCorruptedError,
): ExtensionInfo[] {
  const extensions: ExtensionInfo[] = [];
  let offset = align8(hdr.baseHeaderSize);
  while (offset < hdr.headerSize) {
    const at = offset;
    if (offset + EXT_HEADER_FIXED_SIZE >= hdr.headerSize) throw fail(`Header extension #${extensions.length} goes outside header`, at);
    const hdrSize = view.getUint32(at, true);
    const resetId = view.getUint32(at + 4, true);
    const recordOffset = view.getUint16(at + 8, true);
    const recordSize = view.getUint16(at + 10, true);
    const recordAlign = view.getUint16(at + 12, true);
    const nameSize = view.getUint16(at + 14, true);
    const dataAt = at + extDataOffset(nameSize);
    if (dataAt > hdr.headerSize || dataAt + align8(hdrSize) > hdr.headerSize) {
      throw fail(`Header extension #${extensions.length} goes outside header`, at);
    }
    const name = String.fromCharCode(...bytes.subarray(at + EXT_HEADER_FIXED_SIZE, at + EXT_HEADER_FIXED_SIZE + nameSize));
    const broken = (why: string): IndexCorruptedError => fail(`Broken extension #${extensions.length} (${name}): ${why}`, at);
    if (recordSize === 0 && hdrSize === 0) throw broken("Invalid field values");
    if (!PRINTABLE_NAME.test(name)) throw broken("Broken name");
    if (recordSize !== 0) {
      if (recordAlign === 0 || recordAlign > 8) throw broken("Invalid field values");
      if (recordSize >= EXT_RECORD_MAX_SIZE) throw broken("Record size is too large");
      if (recordOffset + recordSize > hdr.recordSize) {
        throw broken(`Record field points outside record size (${recordOffset}+${recordSize} > ${hdr.recordSize})`);
      }
      if (recordOffset < 5 || recordOffset % recordAlign !== 0) throw broken(`Record field alignment ${recordAlign} not used`);
      if (hdr.recordSize % recordAlign !== 0) throw broken(`Record size not aligned by ${recordAlign} as required by extension`);
    }
    if (hdrSize > EXT_HEADER_MAX_SIZE) throw broken(`Headersize too large (${hdrSize})`);
    if (extensions.some((e) => e.name === name)) throw fail(`Duplicate header extension ${name}`, at);
    extensions.push({
      name,
      resetId,
      hdrSize,
      recordOffset: recordSize === 0 ? 0 : recordOffset,
      recordSize,
      recordAlign,
      hdrData: bytes.slice(dataAt, dataAt + align8(hdrSize)),
    });
    offset = dataAt + align8(hdrSize);
  }
  return extensions;
}

/** mail_index_map_check_header's checks that need only the header. */
function checkHeader(hdr: IndexHeader, fail: (message: string, offset: number) => IndexCorruptedError): void {
  if (hdr.uidValidity === 0 && hdr.nextUid !== 1) throw fail(`uidvalidity=0, but next_uid=${hdr.nextUid}`, 24);
  if (hdr.nextUid === 0) throw fail("next_uid=0", 28);
  if (hdr.seenMessagesCount > hdr.messagesCount) throw fail(`seen_messages_count ${hdr.seenMessagesCount} > messages_count ${hdr.messagesCount}`, 40);
  if (hdr.deletedMessagesCount > hdr.messagesCount) {
    throw fail(`deleted_messages_count ${hdr.deletedMessagesCount} > messages_count ${hdr.messagesCount}`, 44);
  }
  if (hdr.firstRecentUid === 0) throw fail("first_recent_uid=0", 48);
  if (hdr.firstRecentUid > hdr.nextUid) throw fail(`first_recent_uid ${hdr.firstRecentUid} > next_uid ${hdr.nextUid}`, 48);
  if (hdr.firstUnseenUidLowwater > hdr.nextUid) throw fail(`first_unseen_uid_lowwater ${hdr.firstUnseenUidLowwater} > next_uid ${hdr.nextUid}`, 52);
  if (hdr.firstDeletedUidLowwater > hdr.nextUid) throw fail(`first_deleted_uid_lowwater ${hdr.firstDeletedUidLowwater} > next_uid ${hdr.nextUid}`, 56);
}

/**
 * One pass over the records: uids strictly ascending and below next_uid (the
 * fold's uid lookups depend on it), the seen/deleted counters matching the
 * flags (the fold's counter updates depend on that), and the DIRTY count.
 */
function checkRecords(
  records: RecordStore,
  hdr: IndexHeader,
  fail: (message: string, offset: number) => IndexCorruptedError,
): { dirty: number } {
  let prevUid = 0;
  // Each flag's bit summed as it is (SEEN 8, DELETED 4, DIRTY 0x80), divided once at the end.
  let seenBits = 0;
  let deletedBits = 0;
  let dirtyBits = 0;
  let chunkStart = 0;
  const rs = hdr.recordSize;
  // Locals, not property loads per row: every command opening a mailbox runs this loop
  // once per record, mostly before V8 has optimized it.
  const nextUid = hdr.nextUid;
  const SEEN = MailFlag.SEEN;
  const DELETED = MailFlag.DELETED;
  const DIRTY = MailFlag.DIRTY;
  records.forEachChunk((rows) => {
    const words = new Uint32Array(rows.buffer, rows.byteOffset, rows.length >>> 2);
    const end = rows.length;
    for (let at = 0; at < end; at += rs) {
      const uid = words[at >>> 2];
      if (uid <= prevUid || uid >= nextUid) {
        const index = chunkStart + at / rs;
        throw fail(`record ${index + 1} has uid ${uid} after ${prevUid} (next_uid ${nextUid})`, hdr.headerSize + index * rs);
      }
      prevUid = uid;
      const flags = rows[at + 4];
      seenBits += flags & SEEN;
      deletedBits += flags & DELETED;
      dirtyBits += flags & DIRTY;
    }
    chunkStart += end / rs;
  });
  const seen = seenBits / SEEN;
  const deleted = deletedBits / DELETED;
  const dirty = dirtyBits / DIRTY;
  if (seen !== hdr.seenMessagesCount) throw fail(`seen_messages_count ${hdr.seenMessagesCount}, but ${seen} records are \\Seen`, 40);
  if (deleted !== hdr.deletedMessagesCount) {
    throw fail(`deleted_messages_count ${hdr.deletedMessagesCount}, but ${deleted} records are \\Deleted`, 44);
  }
  return { dirty };
}

/** Encodes the state as Dovecot would write dovecot.index. */
export function encodeIndexFile(state: IndexMapState): Uint8Array {
  const head = encodeIndexHeaderArea(state);
  const out = new Uint8Array(head.length + state.records.count * state.records.recordSize);
  out.set(head, 0);
  let offset = head.length;
  state.records.forEachChunk((rows) => {
    out.set(rows, offset);
    offset += rows.length;
  });
  return out;
}

/**
 * The part of dovecot.index before the records (base header, extension
 * headers): a writer can follow it with state.records' chunks as they are,
 * instead of copying the whole index into one buffer (3 MB per rewrite at
 * 100,000 messages).
 */
export function encodeIndexHeaderArea(state: IndexMapState): Uint8Array {
  const hdr = fullHeader(state);
  const out = new Uint8Array(hdr.headerSize);
  const view = new DataView(out.buffer);
  writeBaseHeader(view, 0, hdr);
  out.set(state.baseHeaderExtra, BASE_HEADER_SIZE);
  let offset = align8(hdr.baseHeaderSize);
  for (const ext of state.extensions) {
    assert(ext.hdrData.length === align8(ext.hdrSize), `extension ${ext.name}: header data of ${ext.hdrData.length} bytes`);
    assert(ext.recordOffset + ext.recordSize <= hdr.recordSize, `extension ${ext.name} outside the record`);
    view.setUint32(offset, ext.hdrSize, true);
    view.setUint32(offset + 4, ext.resetId, true);
    view.setUint16(offset + 8, ext.recordOffset, true);
    view.setUint16(offset + 10, ext.recordSize, true);
    view.setUint16(offset + 12, ext.recordAlign, true);
    view.setUint16(offset + 14, ext.name.length, true);
    for (let i = 0; i < ext.name.length; i++) out[offset + EXT_HEADER_FIXED_SIZE + i] = ext.name.charCodeAt(i);
    offset += extDataOffset(ext.name.length);
    out.set(ext.hdrData, offset);
    offset += ext.hdrData.length;
  }
  assert(offset === hdr.headerSize, `header area ended at ${offset}, header_size ${hdr.headerSize}`);
  return out;
}
