/**
 * Message GUIDs looked up by their 16 bytes: an open-addressing table of
 * indexes into one buffer of packed GUIDs, instead of a Map keyed by a hex
 * string per message (a rebuild matches every message by GUID; issue #11).
 */
import { readU32LE } from "../../log/bytes.js";
import { GUID_128_SIZE } from "../dbox/guid.js";

export class GuidTable {
  /** Index + 1 of the GUID each slot holds; 0: empty. */
  private readonly slots: Int32Array;
  private readonly mask: number;
  /** `guids` as little-endian u32s (GUID i is words[4 i, 4 i + 4)), when it is word-aligned. */
  private readonly words: Uint32Array | undefined;

  /**
   * @param guids GUID i is guids[16 i, 16 i + 16).
   * @param capacity how many GUIDs will be put in, at most (the table never grows).
   */
  constructor(private readonly guids: Uint8Array, capacity: number) {
    let size = 16;
    while (size < 2 * capacity) size *= 2;
    this.slots = new Int32Array(size);
    this.mask = size - 1;
    this.words = guids.byteOffset % 4 === 0 && isLittleEndian() ? new Uint32Array(guids.buffer, guids.byteOffset, guids.length >>> 2) : undefined;
  }

  /**
   * slotOf(guids, 16 i): the slot of the table's own GUID i, read and
   * compared a word at a time (four loads, not sixteen and a call each: a
   * rebuild asks once per message, mostly in code not optimized yet).
   */
  slotOfIndex(i: number): number {
    const words = this.words;
    if (words === undefined) return this.slotOf(this.guids, i * GUID_128_SIZE);
    const w = i * 4;
    const a = words[w];
    const b = words[w + 1];
    const c = words[w + 2];
    const d = words[w + 3];
    for (let slot = mixGuidWords(a, b, c, d) & this.mask; ; slot = (slot + 1) & this.mask) {
      const held = this.slots[slot];
      if (held === 0) return slot;
      const h = (held - 1) * 4;
      if (words[h] === a && words[h + 1] === b && words[h + 2] === c && words[h + 3] === d) return slot;
    }
  }

  /** The slot of the GUID at `bytes[at]`: the one holding it, else the empty one where it would go. */
  slotOf(bytes: Uint8Array, at: number): number {
    for (let slot = hashGuid(bytes, at) & this.mask; ; slot = (slot + 1) & this.mask) {
      const held = this.slots[slot];
      if (held === 0 || sameGuid(this.guids, (held - 1) * GUID_128_SIZE, bytes, at)) return slot;
    }
  }

  /** The index in `slot`, or -1 when it is empty. */
  indexIn(slot: number): number {
    return this.slots[slot] - 1;
  }

  /** Puts GUID `index` (of `guids`) in `slot`, which slotOf() gave for that GUID. */
  put(slot: number, index: number): void {
    this.slots[slot] = index + 1;
  }

  /** @returns the index held for the GUID at `bytes[at]`, or -1. */
  find(bytes: Uint8Array, at: number): number {
    return this.indexIn(this.slotOf(bytes, at));
  }
}

function sameGuid(a: Uint8Array, at: number, b: Uint8Array, bt: number): boolean {
  for (let i = 0; i < GUID_128_SIZE; i += 4) if (readU32LE(a, at + i) !== readU32LE(b, bt + i)) return false;
  return true;
}

function hashGuid(bytes: Uint8Array, at: number): number {
  return mixGuidWords(readU32LE(bytes, at), readU32LE(bytes, at + 4), readU32LE(bytes, at + 8), readU32LE(bytes, at + 12));
}

/** All four little-endian words mixed: Dovecot's GUIDs begin with a clock and end with a host hash, SHA-1-made ones are uniform. */
function mixGuidWords(a: number, b: number, c: number, d: number): number {
  let h = a ^ Math.imul(b, 0x9e3779b1);
  h ^= Math.imul(c, 0x85ebca6b) ^ Math.imul(d, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  return h ^ (h >>> 15);
}

/** u32 words of a Uint32Array are little-endian (as readU32LE reads) on this machine. */
function isLittleEndian(): boolean {
  return new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;
}
