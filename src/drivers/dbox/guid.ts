/**
 * Message GUIDs as dbox stores them (metadata `G`): 32 lowercase hex digits
 * of a 128-bit value that guid_128_generate() packs as
 *
 * | off | size | content                                   |
 * |----:|-----:|-------------------------------------------|
 * |   0 |    4 | nanoseconds of the current second, u32 LE |
 * |   4 |    4 | UNIX seconds, u32 LE                      |
 * |   8 |    4 | process id, u32 LE                        |
 * |  12 |    4 | last 4 bytes of SHA-1(host name)          |
 *
 * Readers only need uniqueness; we follow the layout so that GUIDs we make
 * look like Dovecot's (and sort by time the same way).
 */
import { createHash } from "node:crypto";
import * as os from "node:os";
import { InvalidArgumentError } from "../../shared/errors.js";
import { HEX_DIGITS } from "./hex.js";
import { wallClockMs } from "../../shared/wall-clock.js";

/** GUID_128_SIZE */
export const GUID_128_SIZE = 16;

let lastSecs = 0;
let lastNsecs = 0;

/** Wall-clock time with sub-millisecond digits from the high-resolution clock. */
function nowSecsNsecs(): { secs: number; nsecs: number } {
  const ms = wallClockMs();
  const secs = Math.floor(ms / 1000);
  const nsecs = Math.floor((ms - secs * 1000) * 1e6);
  return { secs, nsecs: Math.min(nsecs, 999_999_999) };
}

/**
 * @returns the last 4 bytes of SHA-1(`host`), as guid_128_host_hash_get().
 *   Dovecot hashes its host+domain name; on most machines that is os.hostname().
 */
export function guidHostHash(host: string): Uint8Array {
  const sha1 = createHash("sha1").update(host, "utf8").digest();
  return new Uint8Array(sha1.subarray(sha1.length - 4));
}

let hostHash: Uint8Array | undefined;

/**
 * Generates a new 128-bit message GUID in Dovecot's layout. Two calls in one
 * process never return the same value: when the clock has not moved, the
 * nanoseconds are bumped past the previous GUID's, as Dovecot does.
 * @returns 16 bytes.
 */
export function generateGuid128(): Uint8Array {
  let { secs, nsecs } = nowSecsNsecs();
  if (secs < lastSecs || (secs === lastSecs && nsecs <= lastNsecs)) {
    secs = lastSecs;
    nsecs = lastNsecs + 1;
    if (nsecs >= 1_000_000_000) {
      secs++;
      nsecs = 0;
    }
  }
  lastSecs = secs;
  lastNsecs = nsecs;
  hostHash ??= guidHostHash(os.hostname());
  const out = new Uint8Array(GUID_128_SIZE);
  const view = new DataView(out.buffer);
  view.setUint32(0, nsecs, true);
  view.setUint32(4, secs >>> 0, true);
  view.setUint32(8, process.pid >>> 0, true);
  out.set(hostHash, 12);
  return out;
}

/** @returns a new message GUID string: 32 lowercase hex digits (metadata `G`). */
export function generateMessageGuid(): string {
  return guid128ToString(generateGuid128());
}

/**
 * @returns 32 lowercase hex digits for a 16-byte GUID (guid_128_to_string()).
 * @throws InvalidArgumentError when `guid` is not 16 bytes.
 */
export function guid128ToString(guid: Uint8Array): string {
  if (guid.length !== GUID_128_SIZE) throw new InvalidArgumentError(`a 128-bit GUID has 16 bytes, not ${guid.length}`);
  return Buffer.from(guid.buffer, guid.byteOffset, guid.length).toString("hex");
}

/**
 * @returns the 16 bytes of a 32-hex-digit GUID string, or undefined if it
 *   is not one (either case accepted).
 */
export function guid128FromString(text: string): Uint8Array | undefined {
  // Digit by digit, not a regex and a Buffer: a rebuild parses every message's GUID.
  if (text.length !== 2 * GUID_128_SIZE) return undefined;
  // A char code above a byte is no hex digit: 0 stands for it (not one either).
  for (let i = 0; i < text.length; i++) digitScratch[i] = text.charCodeAt(i) > 0xff ? 0 : text.charCodeAt(i);
  const out = new Uint8Array(GUID_128_SIZE);
  return guid128FromBytes(digitScratch, 0, digitScratch.length, out, 0) ? out : undefined;
}

const digitScratch = new Uint8Array(2 * GUID_128_SIZE);

/**
 * Parses `bytes[start, end)` as a 32-hex-digit GUID (either case) into
 * `out[outAt, outAt + 16)`, straight from the bytes: a rebuild reads every
 * message's `G` this way, without a string per message.
 * @returns false when the range is not 32 hex digits (`out` may then hold part of it).
 */
export function guid128FromBytes(bytes: Uint8Array, start: number, end: number, out: Uint8Array, outAt: number): boolean {
  if (end - start !== 2 * GUID_128_SIZE) return false;
  for (let i = 0; i < GUID_128_SIZE; i++) {
    const hi = HEX_DIGITS[bytes[start + 2 * i]];
    const lo = HEX_DIGITS[bytes[start + 2 * i + 1]];
    if (hi < 0 || lo < 0) return false;
    out[outAt + i] = hi * 16 + lo;
  }
  return true;
}

/**
 * The 128-bit form of a message GUID, which mdbox keeps in its `guid` index
 * extension: the GUID itself when it is 32 hex digits, otherwise the last 16
 * bytes of SHA-1 of the string (mail_generate_guid_128_hash()).
 * @returns 16 bytes.
 */
export function messageGuid128(guid: string): Uint8Array {
  const direct = guid128FromString(guid);
  if (direct !== undefined) return direct;
  const sha1 = createHash("sha1").update(guid, "utf8").digest();
  return new Uint8Array(sha1.subarray(sha1.length - GUID_128_SIZE));
}

/**
 * @returns `guid` (16 bytes, as stored) as 32 lowercase hex digits, or
 *   undefined when it is all zero (guid_128_is_empty: not assigned yet).
 */
export function guid128StringUnlessEmpty(guid: Uint8Array): string | undefined {
  return guid.some((b) => b !== 0) ? guid128ToString(guid) : undefined;
}
