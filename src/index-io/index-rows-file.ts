/**
 * The records area of a dovecot.index open as a descriptor, read into one
 * buffer a run of leaves at a time as the record store asks for them
 * (index-rows.ts checks them). A lookup reads its leaf alone; the leaf
 * after the last one read starts a walk (a flag on all, a search, a
 * checkpoint write), which will want every row: everything not read yet up
 * to the end is read at once. Reading a walk leaf by leaf (98 preads of
 * 32 KiB into fresh buffers at 100,000 messages), or in runs doubling from
 * one leaf, cost a `flags add \Seen … all` 10–20 ms more CPU than the one
 * read of the whole file before.
 */
import { Buffer } from "node:buffer";
import { IndexCorruptedError } from "../shared/errors.js";
import { readFullyAt } from "../shared/read-at.js";
import { LEAF_RECORDS } from "../projections/record-store.js";

export class IndexRowsFile {
  /** Not zeroed (allocUnsafeSlow): a leaf's bytes are read from the file before anyone looks at them. */
  private readonly rows: Buffer;
  /** Per leaf: 1 once its rows are in `rows`. */
  private readonly present: Uint8Array;
  /** The leaf after the last run read. */
  private lastEnd = -1;

  constructor(
    private readonly fd: () => number,
    private readonly path: string,
    private readonly headerSize: number,
    private readonly recordSize: number,
    private readonly count: number,
  ) {
    this.rows = Buffer.allocUnsafeSlow(count * recordSize);
    this.present = new Uint8Array(Math.ceil(count / LEAF_RECORDS));
  }

  /** Records first..first+count-1 (a leaf's), as a view of the one buffer. */
  read(first: number, count: number): Uint8Array {
    const leaf = Math.floor(first / LEAF_RECORDS);
    if (this.present[leaf] === 0) this.readRun(leaf);
    const rs = this.recordSize;
    return new Uint8Array(this.rows.buffer, this.rows.byteOffset + first * rs, count * rs);
  }

  private readRun(leaf: number): void {
    // The leaf after the last run: a walk, so up to the next leaf read already; anything else: a lookup, one leaf.
    const run = leaf === this.lastEnd ? this.present.length : 1;
    let end = leaf;
    while (end < this.present.length && end < leaf + run && this.present[end] === 0) end++;
    const rs = this.recordSize;
    const from = leaf * LEAF_RECORDS * rs;
    const length = Math.min(end * LEAF_RECORDS, this.count) * rs - from;
    const at = this.headerSize + from;
    const got = readFullyAt(this.fd(), this.rows.subarray(from, from + length), at, length);
    // The size was checked against messages_count on open: only a file changed in place could end early.
    if (got < length) throw new IndexCorruptedError(`file ended at ${at + got} reading record ${leaf * LEAF_RECORDS + 1}`, { path: this.path, offset: at + got });
    this.present.fill(1, leaf, end);
    this.lastEnd = end;
  }
}
