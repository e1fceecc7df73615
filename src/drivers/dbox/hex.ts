/**
 * Hex numbers as dbox writes them in text: lowercase `%x` in the file header
 * and metadata, 16 uppercase zero-padded digits in the message header.
 * Readers accept either case, as Dovecot does.
 */
import { assert } from "../../shared/errors.js";

/** Largest value kept exactly: sizes and times beyond it cannot be in a real file. */
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/**
 * Digit values by byte (char code below 256), -1 for the rest: one load per
 * byte where a rebuild parses every message's GUID and sizes. Bytes of a
 * Uint8Array index it directly, with no call per byte (most of that parsing
 * runs once, before it is optimized, where a call costs more than the load).
 */
export const HEX_DIGITS: Int8Array = (() => {
  const t = new Int8Array(256).fill(-1);
  for (let d = 0; d < 10; d++) t[0x30 + d] = d;
  for (let d = 0; d < 6; d++) t[0x61 + d] = t[0x41 + d] = 10 + d;
  return t;
})();

/** @returns the value of the hex digit with char code `c` (either case), or -1. */
export function hexDigit(c: number): number {
  // `& 0xff` keeps an out-of-range code from reading past the table; such a code is not a digit.
  return c === (c & 0xff) ? HEX_DIGITS[c] : -1;
}

/**
 * Parses `bytes[start, end)` as a hex number; `end` ≤ bytes.length (the
 * loop indexes HEX_DIGITS with each byte unchecked, and a byte past the end
 * would read as NaN, not as a non-digit).
 * @returns the value, or undefined when the range is empty, holds a non-hex
 *   byte, or exceeds Number.MAX_SAFE_INTEGER.
 * @throws AssertionFailure when `end` > bytes.length.
 */
export function parseHexBytes(bytes: Uint8Array, start: number, end: number): number | undefined {
  if (end <= start) return undefined;
  // The message only when it fails: a template argument is built on every call (a fetch, a purge and a
  // rebuild parse every message header's size: ~130 bytes of strings each, the most a fetch allocated per message).
  if (end > bytes.length) assert(false, `hex digits [${start}, ${end}) past the end (${bytes.length})`);
  let value = 0;
  for (let i = start; i < end; i++) {
    const d = HEX_DIGITS[bytes[i]];
    if (d < 0) return undefined;
    value = value * 16 + d;
    if (value > MAX_SAFE) return undefined;
  }
  return value;
}

/** Same as parseHexBytes for a string of single-byte characters. */
export function parseHexString(text: string): number | undefined {
  if (text.length === 0) return undefined;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const d = hexDigit(text.charCodeAt(i));
    if (d < 0) return undefined;
    value = value * 16 + d;
    if (value > MAX_SAFE) return undefined;
  }
  return value;
}

/** Parses a plain decimal (POP3 order): digits only, no sign, no spaces. */
export function parseDecimalString(text: string): number | undefined {
  if (!/^[0-9]{1,15}$/.test(text)) return undefined;
  return Number(text);
}

/** `%x`: lowercase hex without padding. */
export function formatHexLower(value: number): string {
  return value.toString(16);
}
