/**
 * EXT_REC_UPDATE entries written one at a time into one growing buffer, in
 * the record's own layout ({uid u32, data, pad4}): a sync records the from
 * offset and header MD5 of every message, and an object and a view per entry
 * were most of what a first sync of a 100k-message mbox held (issue #11,
 * goal 5a). The log writes the bytes as they are (ext-rec-update.ts).
 */
import { pad4 } from "../../log/bytes.js";
import type { PackedExtRecUpdates } from "../../log/types.js";

export class PackedUpdatesBuilder {
  readonly entrySize: number;
  private bytes: Uint8Array;
  private view: DataView;
  private count = 0;
  /** Entries so far have ascending (or equal) UIDs: none to sort. */
  private ascending = true;
  private lastUid = 0;

  constructor(
    readonly recordSize: number,
    capacity = 64,
  ) {
    this.entrySize = pad4(4 + recordSize);
    this.bytes = new Uint8Array(Math.max(1, capacity) * this.entrySize);
    this.view = new DataView(this.bytes.buffer);
  }

  get length(): number {
    return this.count;
  }

  /** Adds the entry of `uid` with the from offset `offset` as its 8 little-endian bytes. */
  addU64(uid: number, offset: number): void {
    const at = this.add(uid);
    // Two u32s, not a BigInt per message (exact below 2^53, far past any mbox).
    this.view.setUint32(at, offset % 2 ** 32, true);
    this.view.setUint32(at + 4, Math.floor(offset / 2 ** 32), true);
  }

  /** Adds the entry of `uid` with `data` (recordSize bytes; shorter is zero-padded, longer cut). */
  addBytes(uid: number, data: Uint8Array): void {
    const at = this.add(uid);
    this.bytes.set(data.length > this.recordSize ? data.subarray(0, this.recordSize) : data, at);
  }

  /** @returns the entries, in UID order (a stable sort, as the record lists have always been). */
  finish(): PackedExtRecUpdates {
    const size = this.entrySize;
    let bytes = this.bytes.subarray(0, this.count * size);
    if (!this.ascending) {
      const order = Array.from({ length: this.count }, (_, i) => i);
      const uidAt = (i: number) => this.view.getUint32(i * size, true);
      order.sort((a, b) => uidAt(a) - uidAt(b) || a - b);
      const sorted = new Uint8Array(bytes.length);
      order.forEach((from, to) => sorted.set(bytes.subarray(from * size, from * size + size), to * size));
      bytes = sorted;
    }
    return { bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), start: 0, count: this.count, entrySize: size };
  }

  /** @returns the offset of the new entry's data, its uid written and the rest zero. */
  private add(uid: number): number {
    const size = this.entrySize;
    if ((this.count + 1) * size > this.bytes.length) {
      const grown = new Uint8Array(this.bytes.length * 2);
      grown.set(this.bytes);
      this.bytes = grown;
      this.view = new DataView(grown.buffer);
    }
    if (uid < this.lastUid) this.ascending = false;
    this.lastUid = uid;
    const at = this.count++ * size;
    this.view.setUint32(at, uid, true);
    return at + 4;
  }
}
