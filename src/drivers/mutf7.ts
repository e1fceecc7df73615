/**
 * Modified UTF-7 (RFC 3501 §5.1.3), the encoding Dovecot uses for mailbox
 * names on disk unless the mail location says `UTF-8`: printable ASCII stands
 * for itself except `&`, which becomes `&-`; every other run of characters is
 * UTF-16 in base64 with `,` instead of `/`, no padding, between `&` and `-`.
 * Observed: `Ünï` is stored as `.&ANw-n&AO8-` in a Maildir++ root.
 */
import { InvalidArgumentError } from "../shared/errors.js";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
const DECODE = new Map<string, number>([...ALPHABET].map((c, i) => [c, i]));

function isDirect(code: number): boolean {
  return code >= 0x20 && code <= 0x7e;
}

/** @returns `name` in modified UTF-7. */
export function encodeMutf7(name: string): string {
  let out = "";
  let i = 0;
  while (i < name.length) {
    const code = name.charCodeAt(i);
    if (code === 0x26) {
      out += "&-";
      i++;
    } else if (isDirect(code)) {
      out += name[i];
      i++;
    } else {
      let end = i;
      while (end < name.length && !isDirect(name.charCodeAt(end))) end++;
      out += `&${base64Utf16(name.slice(i, end))}-`;
      i = end;
    }
  }
  return out;
}

function base64Utf16(run: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < run.length; i++) {
    const unit = run.charCodeAt(i);
    bytes.push(unit >> 8, unit & 0xff);
  }
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = i + 2 < bytes.length ? 4 : i + 1 < bytes.length ? 3 : 2;
    for (let k = 0; k < chars; k++) out += ALPHABET[(n >> (18 - 6 * k)) & 0x3f];
  }
  return out;
}

/**
 * @returns the Unicode name that modified UTF-7 `encoded` stands for.
 * @throws InvalidArgumentError when `encoded` is not valid modified UTF-7
 *   (Dovecot then shows the raw name).
 */
export function decodeMutf7(encoded: string): string {
  let out = "";
  let i = 0;
  while (i < encoded.length) {
    const c = encoded[i];
    const code = encoded.charCodeAt(i);
    if (!isDirect(code)) throw new InvalidArgumentError(`not modified UTF-7 (byte 0x${code.toString(16)}): ${encoded}`);
    if (c !== "&") {
      out += c;
      i++;
      continue;
    }
    const end = encoded.indexOf("-", i + 1);
    if (end < 0) throw new InvalidArgumentError(`unterminated modified UTF-7 shift: ${encoded}`);
    if (end === i + 1) out += "&";
    else out += decodeRun(encoded.slice(i + 1, end), encoded);
    i = end + 1;
  }
  return out;
}

function decodeRun(run: string, whole: string): string {
  let bits = 0;
  let bitCount = 0;
  const units: number[] = [];
  let pendingByte = -1;
  for (const ch of run) {
    const v = DECODE.get(ch);
    if (v === undefined) throw new InvalidArgumentError(`invalid modified UTF-7 character '${ch}': ${whole}`);
    bits = (bits << 6) | v;
    bitCount += 6;
    if (bitCount >= 8) {
      bitCount -= 8;
      const byte = (bits >> bitCount) & 0xff;
      if (pendingByte < 0) pendingByte = byte;
      else {
        units.push((pendingByte << 8) | byte);
        pendingByte = -1;
      }
    }
  }
  // Leftover bits must be zero padding, and no half UTF-16 unit may remain.
  if (pendingByte >= 0 || (bits & ((1 << bitCount) - 1)) !== 0) {
    throw new InvalidArgumentError(`truncated modified UTF-7 run: ${whole}`);
  }
  const text = String.fromCharCode(...units);
  // A run that only encodes direct characters is not the canonical form.
  if ([...text].every((t) => isDirect(t.charCodeAt(0)))) throw new InvalidArgumentError(`non-canonical modified UTF-7: ${whole}`);
  return text;
}
