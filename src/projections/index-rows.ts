/**
 * The records of dovecot.index, checked leaf by leaf as they are read
 * (index-file.md §4). Dovecot mmaps the file, checks its header on open and
 * reads only the rows a command uses; a fresh process that read and checked
 * all of them paid one page fault per 4 KiB and an interpreted loop per row
 * (3.2 MB at 100,000 messages) for a status that reads none.
 *
 * What the fold depends on is still checked before it sees a row: uids
 * ascending within a leaf and against the nearest leaves read before it on
 * either side, all below next_uid; once every leaf has been read, adjacent
 * leaves have all been compared and the seen/deleted counters are checked
 * against the rows as the eager decoder did. A DIRTY row under a header
 * without HAVE_DIRTY is refused: the state's dirty count (0 then) would be
 * wrong, and neither Dovecot nor this engine writes such a file.
 * Pure: the bytes come from `read`.
 */
import { IndexCorruptedError } from "../shared/errors.js";
import { MailFlag } from "../log/types.js";
import { IndexHeaderFlag, type IndexHeader } from "./base-header.js";
import { LEAF_RECORDS, type RowSource } from "./record-store.js";

/**
 * Where the rows come from: `fetch(leaf)` makes sure the leaf's rows are in
 * memory and returns how many records from the leaf's first on it brought
 * in (a whole run of leaves at once, e.g. the rest of the file for a walk;
 * 0 when they were there already); `rows` views them (4-byte aligned).
 */
export interface RowFile {
  fetch(leaf: number): number;
  rows(first: number, count: number): Uint8Array;
}

export class CheckedRows implements RowSource {
  /** Per leaf: its first and last uid once checked, 0 before. */
  private readonly firstUids: Uint32Array;
  private readonly lastUids: Uint32Array;
  private unread: number;
  private seen = 0;
  private deleted = 0;
  /** DIRTY rows over the leaves checked so far. */
  dirty = 0;

  constructor(
    private readonly hdr: IndexHeader,
    private readonly path: string,
    private readonly file: RowFile,
    /** Called once the last leaf has been read and checked (e.g. to close the file). */
    private readonly onAllRead: () => void = () => {},
  ) {
    const leaves = Math.ceil(hdr.messagesCount / LEAF_RECORDS);
    this.firstUids = new Uint32Array(leaves);
    this.lastUids = new Uint32Array(leaves);
    this.unread = leaves;
    if (leaves === 0) onAllRead();
  }

  load(first: number, count: number): Uint8Array {
    const leaf = first / LEAF_RECORDS;
    if (this.lastUids[leaf] === 0) {
      // What one read brought in is checked in one pass (a walk: the rest of the file, as one loop
      // that V8 optimizes once, not a call per leaf); a leaf read before whose check threw, alone.
      const fetched = this.file.fetch(leaf);
      this.check(first, fetched > 0 ? fetched : count);
      if (this.unread === 0) this.onAllRead();
    }
    // Checked on every read once all are in: a counter error stays an error, it does not pass on a second read.
    this.checkCounters();
    return this.file.rows(first, count);
  }

  private fail(message: string, offset: number): IndexCorruptedError {
    return new IndexCorruptedError(message, { path: this.path, offset });
  }

  /** Checks records first..first+count-1 (whole leaves from `first`, none checked yet) and counts their flags. */
  private check(first: number, count: number): void {
    const hdr = this.hdr;
    const rs = hdr.recordSize;
    const rows = this.file.rows(first, count);
    const words = new Uint32Array(rows.buffer, rows.byteOffset, rows.length >>> 2);
    const firstLeaf = first / LEAF_RECORDS;
    // Locals, not property loads per row: this runs once per row read, mostly before V8 optimizes it.
    const nextUid = hdr.nextUid;
    const SEEN = MailFlag.SEEN;
    const DELETED = MailFlag.DELETED;
    const DIRTY = MailFlag.DIRTY;
    let prevUid = 0;
    for (let l = firstLeaf - 1; l >= 0 && prevUid === 0; l--) prevUid = this.lastUids[l];
    // Each flag's bit summed as it is (SEEN 8, DELETED 4, DIRTY 0x80), divided once at the end.
    let seenBits = 0;
    let deletedBits = 0;
    let dirtyBits = 0;
    const end = count * rs;
    for (let at = 0; at < end; at += rs) {
      const uid = words[at >>> 2];
      if (uid <= prevUid || uid >= nextUid) throw this.outOfOrder(first + at / rs, uid, prevUid);
      prevUid = uid;
      const flags = rows[at + 4];
      seenBits += flags & SEEN;
      deletedBits += flags & DELETED;
      dirtyBits += flags & DIRTY;
    }
    const lastLeaf = Math.ceil((first + count) / LEAF_RECORDS) - 1;
    let next = 0;
    let nextLeaf = lastLeaf + 1;
    for (; nextLeaf < this.firstUids.length && next === 0; nextLeaf++) next = this.firstUids[nextLeaf];
    if (next !== 0 && next <= prevUid) throw this.outOfOrder((nextLeaf - 1) * LEAF_RECORDS, next, prevUid);
    if (dirtyBits !== 0 && !(hdr.flags & IndexHeaderFlag.HAVE_DIRTY)) {
      let at = 0;
      while (!(rows[at + 4] & DIRTY)) at += rs;
      throw this.fail(`record ${first + at / rs + 1} is DIRTY, but the header's HAVE_DIRTY flag is not set`, hdr.headerSize + first * rs + at);
    }
    // Every leaf checked: its first and last uid, for the checks of its neighbours read later.
    const stride = rs >>> 2;
    for (let l = firstLeaf; l <= lastLeaf; l++) {
      const from = (l - firstLeaf) * LEAF_RECORDS;
      const to = Math.min(from + LEAF_RECORDS, count) - 1;
      this.firstUids[l] = words[from * stride];
      this.lastUids[l] = words[to * stride];
    }
    this.unread -= lastLeaf - firstLeaf + 1;
    this.seen += seenBits / SEEN;
    this.deleted += deletedBits / DELETED;
    this.dirty += dirtyBits / DIRTY;
  }

  private outOfOrder(index: number, uid: number, prevUid: number): IndexCorruptedError {
    const hdr = this.hdr;
    return this.fail(`record ${index + 1} has uid ${uid} after ${prevUid} (next_uid ${hdr.nextUid})`, hdr.headerSize + index * hdr.recordSize);
  }

  /** The counters against the rows, once all are read (the fold's counter updates depend on them). */
  private checkCounters(): void {
    if (this.unread !== 0) return;
    const hdr = this.hdr;
    if (this.seen !== hdr.seenMessagesCount) throw this.fail(`seen_messages_count ${hdr.seenMessagesCount}, but ${this.seen} records are \\Seen`, 40);
    if (this.deleted !== hdr.deletedMessagesCount) {
      throw this.fail(`deleted_messages_count ${hdr.deletedMessagesCount}, but ${this.deleted} records are \\Deleted`, 44);
    }
  }
}
