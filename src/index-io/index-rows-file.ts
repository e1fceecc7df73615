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
import type { RowFile } from "../projections/index-rows.js";

export class IndexRowsFile implements RowFile {
  /** Not zeroed (allocUnsafeSlow): a leaf's bytes are read from the file before anyone looks at them. */
  private readonly buffer: Buffer;
  /** Per leaf: 1 once its rows are in `buffer`. */
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
    this.buffer = Buffer.allocUnsafeSlow(count * recordSize);
    this.present = new Uint8Array(Math.ceil(count / LEAF_RECORDS));
  }

  /** Records first..first+count-1, as a view of the one buffer (fetched before). */
  rows(first: number, count: number): Uint8Array {
    const rs = this.recordSize;
    return new Uint8Array(this.buffer.buffer, this.buffer.byteOffset + first * rs, count * rs);
  }

  /** Reads the rows of `leaf` unless they are in: @returns how many records from the leaf's first on this read (0: none). */
  fetch(leaf: number): number {
    if (this.present[leaf] !== 0) return 0;
    // The leaf after the last run: a walk, so up to the next leaf read already; anything else: a lookup, one leaf.
    const run = leaf === this.lastEnd ? this.present.length : 1;
    let end = leaf;
    while (end < this.present.length && end < leaf + run && this.present[end] === 0) end++;
    const rs = this.recordSize;
    const from = leaf * LEAF_RECORDS * rs;
    const length = Math.min(end * LEAF_RECORDS, this.count) * rs - from;
    const at = this.headerSize + from;
    const got = readFullyAt(this.fd(), this.buffer.subarray(from, from + length), at, length);
    // The size was checked against messages_count on open: only a file changed in place could end early.
    if (got < length) throw new IndexCorruptedError(`file ended at ${at + got} reading record ${leaf * LEAF_RECORDS + 1}`, { path: this.path, offset: at + got });
    this.present.fill(1, leaf, end);
    this.lastEnd = end;
    return length / rs;
  }
}
