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

/** Reads `count` rows of the file from record `first` on (4-byte aligned, the caller's to keep). */
export type RowReader = (first: number, count: number) => Uint8Array;

export class CheckedRows implements RowSource {
  /** Per leaf: its first and last uid once read, 0 before. */
  private readonly firstUids: Uint32Array;
  private readonly lastUids: Uint32Array;
  private unread: number;
  private seen = 0;
  private deleted = 0;
  /** DIRTY rows over the leaves read so far. */
  dirty = 0;

  constructor(
    private readonly hdr: IndexHeader,
    private readonly path: string,
    private readonly read: RowReader,
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
    const rows = this.read(first, count);
    const leaf = first / LEAF_RECORDS;
    const counted = this.lastUids[leaf] !== 0;
    this.check(first, count, rows);
    // A leaf is read again only after its first read threw (counters or a neighbour): count it once.
    if (!counted && --this.unread === 0) this.onAllRead();
    // Checked on every read once all are in: a counter error stays an error, it does not pass on a second read.
    this.checkCounters();
    return rows;
  }

  private fail(message: string, offset: number): IndexCorruptedError {
    return new IndexCorruptedError(message, { path: this.path, offset });
  }

  private check(first: number, count: number, rows: Uint8Array): void {
    const hdr = this.hdr;
    const rs = hdr.recordSize;
    const leaf = first / LEAF_RECORDS;
    // Locals, not property loads per row: this runs once per row read, mostly before V8 optimizes it.
    const nextUid = hdr.nextUid;
    const SEEN = MailFlag.SEEN;
    const DELETED = MailFlag.DELETED;
    const DIRTY = MailFlag.DIRTY;
    const words = new Uint32Array(rows.buffer, rows.byteOffset, rows.length >>> 2);
    let prevUid = 0;
    for (let l = leaf - 1; l >= 0 && prevUid === 0; l--) prevUid = this.lastUids[l];
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
    let next = 0;
    let nextLeaf = leaf + 1;
    for (; nextLeaf < this.firstUids.length && next === 0; nextLeaf++) next = this.firstUids[nextLeaf];
    if (next !== 0 && next <= prevUid) throw this.outOfOrder((nextLeaf - 1) * LEAF_RECORDS, next, prevUid);
    if (dirtyBits !== 0 && !(hdr.flags & IndexHeaderFlag.HAVE_DIRTY)) {
      let at = 0;
      while (!(rows[at + 4] & DIRTY)) at += rs;
      throw this.fail(`record ${first + at / rs + 1} is DIRTY, but the header's HAVE_DIRTY flag is not set`, hdr.headerSize + first * rs + at);
    }
    if (this.lastUids[leaf] !== 0) return;
    this.firstUids[leaf] = words[0];
    this.lastUids[leaf] = prevUid;
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
