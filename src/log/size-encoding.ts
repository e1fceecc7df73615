/**
 * The record-size field of a log record header (transaction-log.md §3.1):
 * size/4 split into four 7-bit groups, most significant first, each byte with
 * bit 0x80 set. A zero-filled or half-written header therefore decodes to 0,
 * which readers treat as "nothing written here yet".
 */

/** Largest encodable record size (exclusive). */
export const RECORD_SIZE_LIMIT = 0x40000000;

/** Returns the decoded size, or 0 when any byte lacks its 0x80 marker. */
export function decodeRecordSize(bytes: Uint8Array, offset: number): number {
  const b0 = bytes[offset], b1 = bytes[offset + 1], b2 = bytes[offset + 2], b3 = bytes[offset + 3];
  if ((b0 & b1 & b2 & b3 & 0x80) === 0) return 0;
  return ((b3 & 0x7f) | ((b2 & 0x7f) << 7) | ((b1 & 0x7f) << 14) | ((b0 & 0x7f) << 21)) * 4;
}

/** Writes `size` (a multiple of 4 below RECORD_SIZE_LIMIT) at `offset`. */
export function encodeRecordSize(size: number, bytes: Uint8Array, offset: number): void {
  if (size % 4 !== 0 || size < 0 || size >= RECORD_SIZE_LIMIT) {
    throw new RangeError(`record size ${size} cannot be encoded`);
  }
  const v = size / 4;
  bytes[offset] = 0x80 | ((v >>> 21) & 0x7f);
  bytes[offset + 1] = 0x80 | ((v >>> 14) & 0x7f);
  bytes[offset + 2] = 0x80 | ((v >>> 7) & 0x7f);
  bytes[offset + 3] = 0x80 | (v & 0x7f);
}
