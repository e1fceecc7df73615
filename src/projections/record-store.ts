/**
 * Per-message records of the index map, stored the way Dovecot stores them in
 * dovecot.index (index-file.md §4): `record_size` bytes per message, uid at 0,
 * flags at 4, extension fields (keywords bitmap, modseq, cache offset…) at
 * their layout offsets. Keeping Dovecot's row layout makes a checkpoint a
 * straight copy and keeps every extension field in one place; record_size is
 * a multiple of 4, so a Uint32Array over the same bytes reads uids without a
 * DataView.
 *
 * Immutability with cheap commits: rows live in leaves of up to LEAF_RECORDS
 * messages, leaves in segments of up to SEGMENT_LEAVES, segments in one top
 * array. A RecordStore never changes; a RecordEditor copies only the leaves,
 * segment and top array a change touches (a single-flag commit copies one leaf
 * of ≤ 24 KiB, one 64-entry segment and a top array of count/65536 entries),
 * so an old store handed to a view stays valid and its cost does not grow
 * with the mailbox. Objects an editor created carry its token: the same token
 * (one transaction, one replay) may change them in place again, anyone else
 * copies first.
 */
import { BASE_RECORD_SIZE } from "./base-header.js";
import { assert } from "../shared/errors.js";
import type { FieldMove } from "./ext-layout.js";

/** 1024 records of ≤ 24 bytes: a 24 KiB leaf copies in a couple of microseconds. */
export const LEAF_RECORDS = 1024;
/** 64 leaves per segment: a segment covers 65536 messages. */
export const SEGMENT_LEAVES = 64;
const SEGMENT_RECORDS = SEGMENT_LEAVES * LEAF_RECORDS;
/** log2(LEAF_RECORDS). */
const LEAF_SHIFT = 10;

interface Leaf {
  /** capacity × recordSize bytes; rows past `count` are zero. */
  bytes: Uint8Array;
  /** The same buffer as u32s, for uids and aligned u32/u64 fields. */
  words: Uint32Array;
  count: number;
  owner: object | null;
}

interface Segment {
  leaves: Leaf[];
  /** ends[i] = number of records in leaves[0..i]. */
  ends: number[];
  owner: object | null;
}

/** Where record `index` is: segment, leaf, row in the leaf. */
interface Location {
  index: number;
  s: number;
  l: number;
  i: number;
}

/** The shape reads work on: a store, or an editor in the middle of a change. */
interface Tree {
  readonly recordSize: number;
  readonly count: number;
  readonly segments: readonly Segment[];
  /** segEnds[s] = number of records in segments[0..s]. */
  readonly segEnds: readonly number[];
  /**
   * The last record found (index -1: none). A fold finds a uid, then reads
   * and changes its row two or three times: each finds it here instead of
   * searching again. Valid while records are neither added nor removed.
   */
  readonly found: Location;
}

/** A leaf and a row in it, as returned by `locate`. */
export interface RowRef {
  readonly bytes: Uint8Array;
  readonly words: Uint32Array;
  /** Byte offset of the row in `bytes`. */
  readonly offset: number;
}

function newLeaf(capacity: number, recordSize: number, owner: object | null): Leaf {
  const bytes = new Uint8Array(capacity * recordSize);
  return { bytes, words: new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2), count: 0, owner };
}

/**
 * Sets uid and flags of the n zeroed rows of `leaf` from word `w` on (one
 * every `wordsPerRecord` words: record sizes are multiples of 4, the uid a
 * u32 at the start of each) from messages[m, m + n). A function of its own,
 * out of appendMessages: a rebuild or an import appends thousands of rows,
 * and V8 then compiles this small loop rather than appendMessages with
 * everything it inlines (twice the compile work on other threads, measured
 * with --trace-opt in a rebuild).
 */
function writeAppendedRows(leaf: Leaf, w: number, wordsPerRecord: number, messages: ReadonlyArray<{ readonly uid: number; readonly flags: number }>, m: number, n: number): void {
  const words = leaf.words;
  const bytes = leaf.bytes;
  for (let i = 0; i < n; i++, w += wordsPerRecord) {
    const msg = messages[m + i];
    words[w] = msg.uid;
    bytes[(w << 2) + 4] = msg.flags;
  }
}

/** An unowned leaf over `rows` as they are (count rows, capacity the same). */
function viewLeaf(rows: Uint8Array, count: number): Leaf {
  return { bytes: rows, words: new Uint32Array(rows.buffer, rows.byteOffset, rows.length >>> 2), count, owner: null };
}

function copyLeaf(leaf: Leaf, capacity: number, recordSize: number, owner: object): Leaf {
  const copy = newLeaf(Math.max(capacity, leaf.count), recordSize, owner);
  copy.bytes.set(leaf.bytes.subarray(0, leaf.count * recordSize));
  copy.count = leaf.count;
  return copy;
}

/** First i with values[i] > x (values ascending). */
function upperBound(values: readonly number[], x: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid] > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function leafLastUid(leaf: Leaf, stride: number): number {
  return leaf.words[(leaf.count - 1) * stride];
}

/** Index of the first record whose uid is ≥ `uid`, or `count`. */
function lowerBoundUid(t: Tree, uid: number): number {
  const stride = t.recordSize >>> 2;
  const segs = t.segments;
  const found = t.found;
  if (found.index >= 0) {
    const leaf = segs[found.s].leaves[found.l];
    // The record found last has this uid (a transaction's records name the same messages).
    if (leaf.words[found.i * stride] === uid) return found.index;
    // Or the one after it: a transaction's updates and expunges mostly come in uid order (a purge's, one per message).
    if (found.i + 1 < leaf.count && leaf.words[(found.i + 1) * stride] === uid) {
      found.i++;
      return ++found.index;
    }
  }
  if (t.count > 0) {
    // Dense uids (nothing expunged before this one): its index is its distance from the first uid.
    const guess = uid - segs[0].leaves[0].words[0];
    if (guess >= 0 && guess < t.count) {
      const at = locateIn(t, guess);
      if (segs[at.s].leaves[at.l].words[at.i * stride] === uid) return guess;
    }
  }
  let lo = 0;
  let hi = segs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const leaves = segs[mid].leaves;
    if (leafLastUid(leaves[leaves.length - 1], stride) < uid) lo = mid + 1;
    else hi = mid;
  }
  if (lo === segs.length) return t.count;
  const s = lo;
  const seg = segs[s];
  lo = 0;
  hi = seg.leaves.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (leafLastUid(seg.leaves[mid], stride) < uid) lo = mid + 1;
    else hi = mid;
  }
  const l = lo;
  const leaf = seg.leaves[l];
  lo = 0;
  hi = leaf.count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (leaf.words[mid * stride] < uid) lo = mid + 1;
    else hi = mid;
  }
  const index = (s === 0 ? 0 : t.segEnds[s - 1]) + (l === 0 ? 0 : seg.ends[l - 1]) + lo;
  found.index = index;
  found.s = s;
  found.l = l;
  found.i = lo;
  return index;
}

/** @returns where record `index` is (the tree's `found`, overwritten by the next search: copy what you keep). */
function locateIn(t: Tree, index: number): Location {
  const found = t.found;
  if (found.index === index) return found;
  // The message is built only on failure: this runs per record a replay applies.
  if (!(index >= 0 && index < t.count)) assert(false, `record index ${index} out of range`);
  // Full leaves and segments before it (nothing expunged there yet): the place follows from the index.
  const fs0 = Math.floor(index / SEGMENT_RECORDS);
  const fl0 = (index % SEGMENT_RECORDS) >>> LEAF_SHIFT;
  const fi0 = index & (LEAF_RECORDS - 1);
  const seg0 = t.segments[fs0];
  if (
    seg0 !== undefined &&
    (fs0 === 0 || t.segEnds[fs0 - 1] === fs0 * SEGMENT_RECORDS) &&
    fl0 < seg0.leaves.length &&
    (fl0 === 0 || seg0.ends[fl0 - 1] === fl0 * LEAF_RECORDS) &&
    fi0 < seg0.leaves[fl0].count
  ) {
    found.index = index;
    found.s = fs0;
    found.l = fl0;
    found.i = fi0;
    return found;
  }
  const s = upperBound(t.segEnds, index);
  const seg = t.segments[s];
  const inSeg = index - (s === 0 ? 0 : t.segEnds[s - 1]);
  const l = upperBound(seg.ends, inSeg);
  found.index = index;
  found.s = s;
  found.l = l;
  found.i = inSeg - (l === 0 ? 0 : seg.ends[l - 1]);
  return found;
}

function noneFound(): Location {
  return { index: -1, s: 0, l: 0, i: 0 };
}

/** Read access shared by RecordStore and RecordEditor. */
abstract class RecordReader implements Tree {
  abstract readonly recordSize: number;
  abstract readonly count: number;
  abstract readonly segments: readonly Segment[];
  abstract readonly segEnds: readonly number[];
  readonly found: Location = noneFound();

  /** The row at 0-based `index` (a view into shared bytes: never write to it). */
  row(index: number): RowRef {
    const { s, l, i } = locateIn(this, index);
    const leaf = this.segments[s].leaves[l];
    return { bytes: leaf.bytes, words: leaf.words, offset: i * this.recordSize };
  }

  uidAt(index: number): number {
    // Not through row(): a lookup per applied record must not allocate.
    const { s, l, i } = locateIn(this, index);
    return this.segments[s].leaves[l].words[(i * this.recordSize) >>> 2];
  }

  /** Index of the first record with uid ≥ `uid` (`count` when none). */
  lowerBound(uid: number): number {
    return lowerBoundUid(this, uid);
  }

  /** 0-based index of `uid`, or -1. */
  indexOfUid(uid: number): number {
    const i = lowerBoundUid(this, uid);
    return i < this.count && this.uidAt(i) === uid ? i : -1;
  }

  /**
   * Indexes of the first and last records with uid1 ≤ uid ≤ uid2, or
   * undefined when there are none (Dovecot's mail_index_lookup_seq_range).
   */
  rangeOfUids(uid1: number, uid2: number): [number, number] | undefined {
    const first = lowerBoundUid(this, uid1);
    if (first >= this.count || this.uidAt(first) > uid2) return undefined;
    // One uid (most updates): found, and it is the only one.
    if (uid1 === uid2) return [first, first];
    const last = uid2 >= 0xffffffff ? this.count - 1 : lowerBoundUid(this, uid2 + 1) - 1;
    return [first, last];
  }

  /**
   * Index of the first record with uid1 ≤ uid ≤ uid2, or -1: rangeOfUids
   * without the array, for the fold's per-record lookups.
   */
  firstOfUids(uid1: number, uid2: number): number {
    const first = lowerBoundUid(this, uid1);
    return first < this.count && this.uidAt(first) <= uid2 ? first : -1;
  }

  /** Index of the last record with uid ≤ uid2, given `first` = firstOfUids(uid1, uid2) ≥ 0. */
  lastOfUids(first: number, uid1: number, uid2: number): number {
    if (uid1 === uid2) return first;
    return uid2 >= 0xffffffff ? this.count - 1 : lowerBoundUid(this, uid2 + 1) - 1;
  }

  /**
   * Calls `visit` for records first..last in order with the leaf's arrays
   * and the row's byte offset in them: no allocation per row (a flags
   * operation visits every message). The arrays are shared: never write.
   */
  visitRows(first: number, last: number, visit: (bytes: Uint8Array, words: Uint32Array, offset: number, index: number) => void): void {
    if (first > last) return;
    let { s, l, i } = locateIn(this, first);
    for (let index = first; index <= last; s++, l = 0) {
      const leaves = this.segments[s].leaves;
      for (; l < leaves.length && index <= last; l++, i = 0) {
        const leaf = leaves[l];
        for (; i < leaf.count && index <= last; i++, index++) visit(leaf.bytes, leaf.words, i * this.recordSize, index);
      }
    }
  }

  /**
   * Calls `visit` with the row of each of `uids` (ascending; repeats are
   * visited again) that exists, its position `k` in `uids` and its 0-based
   * record index, in order.
   * From one row it steps to the next in place and searches only when the
   * next uid is not there: a commit naming thousands of messages in uid
   * order finds each without a search or an object per message (issue #11).
   * The arrays are shared: never write.
   */
  visitUids(uids: ArrayLike<number>, visit: (bytes: Uint8Array, words: Uint32Array, offset: number, k: number, index: number) => void): void {
    const stride = this.recordSize >>> 2;
    const segs = this.segments;
    let leaf: Leaf | undefined;
    let s = 0;
    let l = 0;
    let i = 0;
    let index = 0;
    for (let k = 0; k < uids.length; k++) {
      const uid = uids[k];
      if (leaf !== undefined && leaf.words[i * stride] !== uid) {
        // The next row, across a leaf or segment edge.
        let ns = s;
        let nl = l;
        let ni = i + 1;
        if (ni === leaf.count) {
          ni = 0;
          if (++nl === segs[ns].leaves.length) {
            nl = 0;
            ns++;
          }
        }
        const next = ns < segs.length ? segs[ns].leaves[nl] : undefined;
        if (next !== undefined && next.words[ni * stride] === uid) {
          leaf = next;
          s = ns;
          l = nl;
          i = ni;
          index++;
        } else {
          leaf = undefined;
        }
      }
      if (leaf === undefined) {
        index = lowerBoundUid(this, uid);
        // Every later uid is above this one: none of them is here either.
        if (index >= this.count) return;
        const at = locateIn(this, index);
        s = at.s;
        l = at.l;
        i = at.i;
        leaf = segs[s].leaves[l];
        if (leaf.words[i * stride] !== uid) continue;
      }
      visit(leaf.bytes, leaf.words, i * this.recordSize, k, index);
    }
  }

  /** Calls `fn` with each leaf's rows, in order (`count × recordSize` bytes), and the leaf's whole buffer as u32s (row r's uid is `words[r × recordSize / 4]`). */
  forEachChunk(fn: (rows: Uint8Array, words: Uint32Array) => void): void {
    for (const seg of this.segments) {
      for (const leaf of seg.leaves) fn(leaf.bytes.subarray(0, leaf.count * this.recordSize), leaf.words);
    }
  }
}

/** An immutable set of message records. */
export class RecordStore extends RecordReader {
  private segs: readonly Segment[] | undefined;
  private ends: readonly number[] | undefined;
  /** A lazy store's rows, still to be read (RecordStore.lazy). */
  private pending: (() => RecordStore) | undefined;
  /** What reading them threw: thrown again at every later access, never a half-read store. */
  private failure: unknown;
  /** A lazy store's single leaves, read (and checked alone) for point lookups before the rest (probeIndexOf). */
  private readLeaf: ((l: number) => Uint8Array) | undefined;
  private probed: Map<number, Leaf> | undefined;
  /** Frees what a lazy store's rows are read from (its descriptor): RecordStore.release. */
  private releaseRows: (() => void) | undefined;

  /** @internal Use RecordStore.empty / fromRows / lazy / RecordEditor.finish. */
  constructor(
    readonly recordSize: number,
    readonly count: number,
    segments: readonly Segment[] | undefined,
    segEnds: readonly number[] | undefined,
    /** @internal The token of the editor that built it. */
    readonly owner: object | null,
  ) {
    super();
    assert(recordSize >= BASE_RECORD_SIZE && recordSize % 4 === 0, `record size ${recordSize}`);
    this.segs = segments;
    this.ends = segEnds;
  }

  /**
   * A store of `count` rows that `read` gives on first access to any row
   * (dovecot.index's rows, read and checked only when a command needs
   * them: a status needs none). `read` may throw (a broken row): that
   * error is thrown by every access, and the store is never half-read.
   */
  static lazy(recordSize: number, count: number, read: () => RecordStore, readLeaf?: (l: number) => Uint8Array, release?: () => void): RecordStore {
    const store = new RecordStore(recordSize, count, undefined, undefined, null);
    store.pending = read;
    store.readLeaf = readLeaf;
    store.releaseRows = release;
    return store;
  }

  /**
   * Its owner is done with it (an index writer closing): a lazy store not
   * read yet frees what its rows would be read from; reading them after
   * this throws what `release` made its read throw. Nothing for any other store.
   */
  release(): void {
    const release = this.releaseRows;
    this.releaseRows = undefined;
    if (this.segs === undefined) release?.();
  }

  /**
   * A lazy store not read yet answers a lookup of one uid, and the read of
   * that one row, from the leaf the uid's index falls in when the uids are
   * dense (no expunge before it: index = uid − first uid), reading leaf 0
   * and that leaf only (`readLeaf`, which checks what it reads). Anything
   * else reads every row.
   */
  private get probing(): boolean {
    return this.segs === undefined && this.readLeaf !== undefined && this.pending !== undefined;
  }

  private probeLeaf(l: number): Leaf {
    let leaf = this.probed?.get(l);
    if (leaf === undefined) {
      let rows: Uint8Array;
      try {
        rows = this.readLeaf!(l);
      } catch (err) {
        // As a failed whole read: every later access throws it.
        this.failure = err;
        this.pending = undefined;
        throw err;
      }
      leaf = viewLeaf(rows, rows.length / this.recordSize);
      (this.probed ??= new Map()).set(l, leaf);
    }
    return leaf;
  }

  /** The index of `uid` found by the dense guess, or -1 (not there, or not known without reading every row). */
  private probeIndexOf(uid: number): number {
    if (this.count === 0) return -1;
    const guess = uid - this.probeLeaf(0).words[0];
    if (guess < 0 || guess >= this.count) return -1;
    const leaf = this.probeLeaf(guess >>> LEAF_SHIFT);
    return leaf.words[((guess & (LEAF_RECORDS - 1)) * this.recordSize) >>> 2] === uid ? guess : -1;
  }

  override rangeOfUids(uid1: number, uid2: number): [number, number] | undefined {
    if (uid1 === uid2 && this.probing) {
      const i = this.probeIndexOf(uid1);
      if (i >= 0) return [i, i];
    }
    return super.rangeOfUids(uid1, uid2);
  }

  override indexOfUid(uid: number): number {
    if (this.probing) {
      const i = this.probeIndexOf(uid);
      if (i >= 0) return i;
    }
    return super.indexOfUid(uid);
  }

  override uidAt(index: number): number {
    if (this.probing && index >= 0 && index < this.count) {
      return this.probeLeaf(index >>> LEAF_SHIFT).words[((index & (LEAF_RECORDS - 1)) * this.recordSize) >>> 2];
    }
    return super.uidAt(index);
  }

  override row(index: number): RowRef {
    if (this.probing && index >= 0 && index < this.count) {
      const leaf = this.probeLeaf(index >>> LEAF_SHIFT);
      return { bytes: leaf.bytes, words: leaf.words, offset: (index & (LEAF_RECORDS - 1)) * this.recordSize };
    }
    return super.row(index);
  }

  override visitRows(first: number, last: number, visit: (bytes: Uint8Array, words: Uint32Array, offset: number, index: number) => void): void {
    if (first === last && this.probing && first >= 0 && first < this.count) {
      const leaf = this.probeLeaf(first >>> LEAF_SHIFT);
      visit(leaf.bytes, leaf.words, (first & (LEAF_RECORDS - 1)) * this.recordSize, first);
      return;
    }
    super.visitRows(first, last, visit);
  }

  get segments(): readonly Segment[] {
    return this.segs ?? this.load().segs!;
  }

  get segEnds(): readonly number[] {
    return this.ends ?? this.load().ends!;
  }

  /** Whether this is a lazy store whose rows have not been read yet. */
  get unread(): boolean {
    return this.segs === undefined;
  }

  /** Reads a lazy store's rows now (nothing for any other store). @throws what its read throws. */
  load(): this {
    if (this.segs !== undefined) return this;
    if (this.pending === undefined) throw this.failure;
    try {
      const read = this.pending();
      assert(read.count === this.count && read.recordSize === this.recordSize, "lazy rows of another shape");
      this.ends = read.segEnds;
      this.segs = read.segments;
    } catch (err) {
      this.failure = err;
      throw err;
    } finally {
      this.pending = undefined;
      this.probed = undefined;
      this.releaseRows = undefined;
    }
    return this;
  }

  static empty(recordSize: number): RecordStore {
    return new RecordStore(recordSize, 0, [], [], null);
  }

  /** Copies `count` rows of `recordSize` bytes starting at `bytes[start]`. */
  /**
   * A store of `count` rows of `bytes` from `start`. `adopt`: the caller
   * hands `bytes` over (a file read of its own, never written again), so
   * the leaves are views of it rather than copies: opening a 20,000-message
   * dovecot.index copied 640 KB into fresh leaves. Leaves made here have no
   * owner, so no editor changes them in place.
   */
  static fromRows(bytes: Uint8Array, start: number, count: number, recordSize: number, adopt = false): RecordStore {
    // A Uint32Array view needs 4-byte alignment (record_size is a multiple of 4).
    const view = adopt && (bytes.byteOffset + start) % 4 === 0;
    const segments: Segment[] = [];
    const segEnds: number[] = [];
    let done = 0;
    while (done < count) {
      const seg: Segment = { leaves: [], ends: [], owner: null };
      let inSeg = 0;
      while (done < count && seg.leaves.length < SEGMENT_LEAVES) {
        const n = Math.min(LEAF_RECORDS, count - done);
        const rows = bytes.subarray(start + done * recordSize, start + (done + n) * recordSize);
        const leaf = view ? viewLeaf(rows, n) : newLeaf(n, recordSize, null);
        if (!view) leaf.bytes.set(rows);
        leaf.count = n;
        seg.leaves.push(leaf);
        inSeg += n;
        seg.ends.push(inSeg);
        done += n;
      }
      segments.push(seg);
      segEnds.push(done);
    }
    return new RecordStore(recordSize, count, segments, segEnds, null);
  }

  /** Starts a change; objects carrying `token` may be changed in place. */
  edit(token: object): RecordEditor {
    return new RecordEditor(this, token);
  }
}

/**
 * One leaf during `RecordEditor.forRange`: read `bytes`/`words` freely, call
 * `writable()` before the first write (it copies the leaf unless the editor
 * already owns it, and re-points `bytes`/`words` at the copy).
 */
export interface LeafCursor {
  bytes: Uint8Array;
  words: Uint32Array;
  writable(): void;
}

/**
 * A walk over records first..last, one leaf at a time, without a callback:
 * replay walks a range per record it applies, and a closure per walk was a
 * good part of its garbage. Rows `from..to` of `bytes`/`words` are the
 * current leaf's part of the range; `next()` moves to the next leaf.
 */
export class RowSpan implements LeafCursor {
  bytes: Uint8Array;
  words: Uint32Array;
  /** Leaf-local row numbers of the current leaf's part of the range. */
  from = 0;
  to = -1;
  /** The 0-based record index of row `from`. */
  first = 0;
  private s = 0;
  private l = 0;
  private remaining = 0;
  /** Whether writable() made the current leaf the editor's: a walk writing every row asks once per leaf, not per row. */
  private owned = false;

  constructor(private readonly editor: RecordEditor) {
    this.bytes = EMPTY_BYTES;
    this.words = EMPTY_WORDS;
  }

  /** @internal Starts at records first..last (first ≤ last, both in range). */
  start(first: number, last: number): this {
    const at = locateIn(this.editor, first);
    this.s = at.s;
    this.l = at.l;
    this.remaining = last - first + 1;
    this.first = first;
    this.enter(at.i);
    return this;
  }

  /** Moves to the next leaf of the range; false when the range is done. */
  next(): boolean {
    if (this.remaining === 0) return false;
    this.first += this.to - this.from + 1;
    if (++this.l === this.editor.segments[this.s].leaves.length) {
      this.l = 0;
      this.s++;
    }
    this.enter(0);
    return true;
  }

  writable(): void {
    if (this.owned) return;
    const leaf = this.editor.ownLeafAt(this.s, this.l);
    this.bytes = leaf.bytes;
    this.words = leaf.words;
    this.owned = true;
  }

  private enter(i: number): void {
    const leaf = this.editor.segments[this.s].leaves[this.l];
    const n = Math.min(leaf.count - i, this.remaining);
    this.bytes = leaf.bytes;
    this.words = leaf.words;
    this.owned = false;
    this.from = i;
    this.to = i + n - 1;
    this.remaining -= n;
  }
}

const EMPTY_BYTES = new Uint8Array(0);
const EMPTY_WORDS = new Uint32Array(0);

/** A change in progress; `finish()` turns it into a new RecordStore. */
export class RecordEditor extends RecordReader {
  recordSize: number;
  count: number;
  segments: Segment[];
  segEnds: number[];
  private topOwned: boolean;
  private changed = false;
  private sharedSpan: RowSpan | undefined;

  constructor(
    private readonly base: RecordStore,
    private readonly token: object,
  ) {
    super();
    this.recordSize = base.recordSize;
    this.count = base.count;
    this.segments = base.segments as Segment[];
    this.segEnds = base.segEnds as number[];
    this.topOwned = base.owner === token;
  }

  /** The store as changed so far (the base store itself when nothing changed). */
  finish(): RecordStore {
    if (!this.changed) return this.base;
    return new RecordStore(this.recordSize, this.count, this.segments, this.segEnds, this.token);
  }

  private ownTop(): void {
    this.changed = true;
    if (this.topOwned) return;
    this.segments = this.segments.slice();
    this.segEnds = this.segEnds.slice();
    this.topOwned = true;
  }

  private ownSegment(s: number): Segment {
    this.ownTop();
    let seg = this.segments[s];
    if (seg.owner !== this.token) {
      seg = { leaves: seg.leaves.slice(), ends: seg.ends.slice(), owner: this.token };
      this.segments[s] = seg;
    }
    return seg;
  }

  private ownLeaf(s: number, l: number, capacity = 0): Leaf {
    const seg = this.ownSegment(s);
    let leaf = seg.leaves[l];
    if (leaf.owner !== this.token || leaf.bytes.length < capacity * this.recordSize) {
      leaf = copyLeaf(leaf, capacity, this.recordSize, this.token);
      seg.leaves[l] = leaf;
    }
    return leaf;
  }

  /**
   * Visits the records with 0-based indexes first..last, leaf by leaf:
   * `visit(cursor, from, to)` gets leaf-local row numbers from..to.
   */
  forRange(first: number, last: number, visit: (cursor: LeafCursor, from: number, to: number) => void): void {
    if (first > last) return;
    // A span of its own: a visit may start another walk.
    const span = new RowSpan(this).start(first, last);
    do visit(span, span.from, span.to);
    while (span.next());
  }

  /**
   * Records first..last (first ≤ last) as a RowSpan, without a callback. The
   * editor has one span: a walk must end before the next one starts (use
   * forRange for nested walks).
   */
  span(first: number, last: number): RowSpan {
    this.sharedSpan ??= new RowSpan(this);
    return this.sharedSpan.start(first, last);
  }

  /** @internal For RowSpan. */
  ownLeafAt(s: number, l: number): Leaf {
    return this.ownLeaf(s, l);
  }

  /**
   * Adds a record at the end for each of `messages`: uid and flags set, every
   * other byte zero. A leaf is made ready once per run of rows it takes, not
   * once per row (a rebuild or an import appends thousands in one record).
   */
  appendMessages(messages: ReadonlyArray<{ readonly uid: number; readonly flags: number }>): void {
    if (messages.length === 0) return;
    this.ownTop();
    // Record positions are unchanged, but the last leaf may be replaced by a new one.
    this.found.index = -1;
    const rs = this.recordSize;
    const wordsPerRecord = rs >>> 2;
    let m = 0;
    while (m < messages.length) {
      let s = this.segments.length - 1;
      let seg = s < 0 ? undefined : this.segments[s];
      const lastLeaf = seg === undefined ? undefined : seg.leaves[seg.leaves.length - 1];
      if (lastLeaf === undefined || lastLeaf.count === LEAF_RECORDS) {
        // Stored at the end, not push()ed: an empty store's arrays start out holding no objects (V8's
        // small-integer elements kind), and optimized code that inlined push() for the first store it met
        // was thrown away at the next empty store's first segment (--trace-deopt "not a Smi": a rebuild
        // appends to a new map, then to a new mailbox).
        if (seg === undefined || seg.leaves.length === SEGMENT_LEAVES) {
          this.segments[this.segments.length] = { leaves: [], ends: [], owner: this.token };
          this.segEnds.push(this.count);
          s++;
        }
        seg = this.ownSegment(s);
        seg.leaves[seg.leaves.length] = newLeaf(LEAF_RECORDS, rs, this.token);
        seg.ends.push(seg.ends.length === 0 ? 0 : seg.ends[seg.ends.length - 1]);
      } else {
        seg = this.ownSegment(s);
      }
      const l = seg.leaves.length - 1;
      const leaf = this.ownLeaf(s, l, LEAF_RECORDS);
      const n = Math.min(LEAF_RECORDS - leaf.count, messages.length - m);
      const at = leaf.count * rs;
      leaf.bytes.fill(0, at, at + n * rs);
      writeAppendedRows(leaf, at >>> 2, wordsPerRecord, messages, m, n);
      m += n;
      leaf.count += n;
      seg.ends[l] += n;
      this.segEnds[s] += n;
      this.count += n;
    }
  }

  /**
   * Removes the records in `ranges` (0-based inclusive index pairs, ascending,
   * disjoint). Only the segments holding them are rebuilt; a leaf left small is
   * merged with its predecessor so leaves stay reasonably full.
   */
  expunge(ranges: ReadonlyArray<readonly [number, number]>): void {
    if (ranges.length === 0) return;
    this.ownTop();
    this.found.index = -1;
    const rs = this.recordSize;
    const segments: Segment[] = [];
    let r = 0;
    let segStart = 0;
    for (let s = 0; s < this.segments.length; s++) {
      const seg = this.segments[s];
      const segEnd = this.segEnds[s];
      if (r >= ranges.length || ranges[r][0] >= segEnd) {
        segments.push(seg);
        segStart = segEnd;
        continue;
      }
      const leaves: Leaf[] = [];
      for (let l = 0; l < seg.leaves.length; l++) {
        const leaf = seg.leaves[l];
        const leafStart = segStart + (l === 0 ? 0 : seg.ends[l - 1]);
        const leafEnd = leafStart + leaf.count;
        if (r >= ranges.length || ranges[r][0] >= leafEnd) {
          leaves.push(leaf);
          continue;
        }
        // Copy the surviving rows of this leaf into a tight new leaf.
        const kept = newLeaf(leaf.count, rs, this.token);
        let pos = leafStart;
        while (pos < leafEnd) {
          const inLeaf = r < ranges.length && ranges[r][0] < leafEnd;
          const cut = inLeaf ? Math.max(ranges[r][0], pos) : leafEnd;
          if (cut > pos) {
            kept.bytes.set(leaf.bytes.subarray((pos - leafStart) * rs, (cut - leafStart) * rs), kept.count * rs);
            kept.count += cut - pos;
          }
          if (!inLeaf) break;
          const rangeEnd = ranges[r][1] + 1;
          if (rangeEnd <= leafEnd) r++;
          pos = Math.min(rangeEnd, leafEnd);
        }
        if (kept.count === 0) continue;
        const prev = leaves[leaves.length - 1];
        if (prev !== undefined && kept.count < LEAF_RECORDS / 2 && prev.count + kept.count <= LEAF_RECORDS) {
          const merged = copyLeaf(prev, prev.count + kept.count, rs, this.token);
          merged.bytes.set(kept.bytes.subarray(0, kept.count * rs), merged.count * rs);
          merged.count += kept.count;
          leaves[leaves.length - 1] = merged;
        } else {
          leaves.push(kept.count === leaf.count ? leaf : kept);
        }
      }
      segStart = segEnd;
      if (leaves.length === 0) continue;
      const ends: number[] = [];
      let total = 0;
      for (const leaf of leaves) ends.push((total += leaf.count));
      segments.push({ leaves, ends, owner: this.token });
    }
    this.segments = segments;
    this.segEnds = [];
    let total = 0;
    for (const seg of segments) this.segEnds.push((total += seg.ends[seg.ends.length - 1]));
    this.count = total;
  }

  /**
   * Rewrites every record for a new layout (Dovecot's sync_ext_reorder): the
   * 8 base bytes, then each field moved; everything else becomes zero.
   */
  relayout(recordSize: number, moves: readonly FieldMove[]): void {
    this.ownTop();
    this.found.index = -1;
    const oldSize = this.recordSize;
    for (let s = 0; s < this.segments.length; s++) {
      const seg = this.segments[s];
      const leaves = seg.leaves.map((leaf) => {
        const out = newLeaf(leaf.count, recordSize, this.token);
        const src = leaf.bytes;
        const dst = out.bytes;
        for (let i = 0; i < leaf.count; i++) {
          const so = i * oldSize;
          const d = i * recordSize;
          for (let k = 0; k < BASE_RECORD_SIZE; k++) dst[d + k] = src[so + k];
          for (const m of moves) for (let k = 0; k < m.size; k++) dst[d + m.to + k] = src[so + m.from + k];
        }
        out.count = leaf.count;
        return out;
      });
      this.segments[s] = { leaves, ends: seg.ends.slice(), owner: this.token };
    }
    this.recordSize = recordSize;
  }

  /** Zeroes `size` bytes at `offset` of every record, copying only leaves that had non-zero bytes there. */
  clearField(offset: number, size: number): void {
    if (size === 0 || this.count === 0) return;
    const rs = this.recordSize;
    this.forRange(0, this.count - 1, (cur, from, to) => {
      for (let i = from; i <= to; i++) {
        const o = i * rs + offset;
        let nonZero = false;
        for (let k = 0; k < size; k++) if (cur.bytes[o + k] !== 0) nonZero = true;
        if (!nonZero) continue;
        cur.writable();
        cur.bytes.fill(0, o, o + size);
      }
    });
  }
}
