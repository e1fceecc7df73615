/** Small byte helpers shared by the record codecs. */
import { assert } from "../shared/errors.js";

export function pad4(n: number): number {
  return (n + 3) & ~3;
}

export function dataViewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const latin1 = new TextDecoder("latin1");

/**
 * Names in Dovecot's files are raw bytes (keywords are IMAP atoms, extension
 * names ASCII). latin1 maps every byte to one char, so decode/encode round-trips.
 */
export function bytesToString(bytes: Uint8Array, start: number, end: number): string {
  // Keyword names are short, and one is decoded per record: a TextDecoder call costs more than the loop.
  if (end - start <= SHORT_NAME) {
    let text = "";
    for (let i = start; i < end; i++) text += String.fromCharCode(bytes[i]);
    return text;
  }
  return latin1.decode(bytes.subarray(start, end));
}

const SHORT_NAME = 16;

export function stringToBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) throw new RangeError(`character U+${c.toString(16)} cannot be stored in a log name`);
    out[i] = c;
  }
  return out;
}

/** The little-endian u32 at bytes[at], by hand (no DataView): for per-record reads. */
export function readU32LE(bytes: Uint8Array, at: number): number {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
}

/** Writes `v` as a little-endian u32 at `out[at]`, without a DataView (per-message encoders). */
export function writeU32LE(out: Uint8Array, at: number, v: number): void {
  out[at] = v;
  out[at + 1] = v >>> 8;
  out[at + 2] = v >>> 16;
  out[at + 3] = v >>> 24;
}

/** A growable little-endian writer over one buffer. */
export class ByteWriter {
  bytes: Uint8Array;
  view: DataView;
  length = 0;

  constructor(capacity = 256) {
    this.bytes = new Uint8Array(capacity);
    this.view = dataViewOf(this.bytes);
  }

  private wordsOf: Uint32Array | undefined;

  /**
   * The buffer as u32s, for per-entry encoders writing at 4-aligned offsets
   * (a little-endian host, as the record store's uid reads assume): one
   * store per field instead of four. Valid until the next reserve().
   */
  words(at: number): Uint32Array {
    // Records start 4-aligned in every log buffer (a 40-byte header, records padded to 4).
    // The message built only on failure (an argument's template literal is built on every call).
    if ((at & 3) !== 0) assert(false, `u32 stores at unaligned offset ${at}`);
    if (this.wordsOf?.buffer !== this.bytes.buffer) this.wordsOf = new Uint32Array(this.bytes.buffer, this.bytes.byteOffset, this.bytes.length >>> 2);
    return this.wordsOf!;
  }

  /** Makes room for `n` more bytes and returns the offset where they go. */
  reserve(n: number): number {
    const at = this.length;
    const need = at + n;
    if (need > this.bytes.length) {
      let cap = this.bytes.length * 2;
      while (cap < need) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.bytes.subarray(0, at));
      this.bytes = next;
      this.view = dataViewOf(next);
    }
    this.length = need;
    return at;
  }

  // reserve() may replace the buffer, so it runs before this.view is read.
  // A value that does not fit would be written modulo the field's size (a name length of 70,000 as 4,464): refused instead.
  u8(v: number): void {
    if (!(v >= 0 && v <= 0xff && Number.isInteger(v))) assert(false, `${v} does not fit a u8 field`);
    const at = this.reserve(1);
    this.view.setUint8(at, v);
  }
  u16(v: number): void {
    if (!(v >= 0 && v <= 0xffff && Number.isInteger(v))) assert(false, `${v} does not fit a u16 field`);
    const at = this.reserve(2);
    this.view.setUint16(at, v, true);
  }
  u32(v: number): void { const at = this.reserve(4); this.view.setUint32(at, v >>> 0, true); }
  i32(v: number): void { const at = this.reserve(4); this.view.setInt32(at, v, true); }
  u64(v: bigint): void { const at = this.reserve(8); this.view.setBigUint64(at, v, true); }
  raw(data: Uint8Array): void { const at = this.reserve(data.length); this.bytes.set(data, at); }
  /** Zero bytes up to the next multiple of 4 counted from `from`. */
  padFrom(from: number): void {
    const n = pad4(this.length - from) - (this.length - from);
    if (n > 0) {
      const at = this.reserve(n);
      this.bytes.fill(0, at, this.length);
    }
  }

  result(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }
}
