/**
 * Where a stored message ends, checked as dboxBodyEnd() and a metadata
 * block's magic and end line check it, in one call that allocates nothing
 * and throws nothing. A purge walks every message of the files it rewrites
 * once, with cold code: five calls per message (and a typed array's
 * `length` getter per magic byte) kept that walk in V8's interpreter for
 * most of a 10 MiB file, 20–25 ms a file at 20k messages against 2 ms once
 * optimized. The header and the metadata's lines are read by the checks
 * every other dbox reader uses (dboxMessageSizeIfSound, findDboxMetadataEnd).
 */
import { dboxMessageSizeIfSound } from "./message-header.js";
import { findDboxMetadataEnd } from "./metadata.js";

const LF = 0x0a;

/** Where dboxMessageEnd() found the body's end: one object per walk, written per message. */
export interface DboxBodyEnd {
  bodyEnd: number;
}

/**
 * Walks the message whose header starts at `bytes[at]`: header magic and
 * final LF, the hex size, the body within `bytes`, DBOX_MAGIC_POST after it
 * and the metadata lines up to the empty (or space-led) one that ends them.
 * `msgHeaderSize` is the file header's `M` (30 or more).
 * @returns the index after the metadata block, with the body's end in
 *   `out.bodyEnd`; or -1 wherever dboxBodyEnd() or decoding the metadata
 *   block's magic and end would throw MailCorruptedError (bytes ending
 *   early included).
 */
export function dboxMessageEnd(bytes: Uint8Array, at: number, msgHeaderSize: number, out: DboxBodyEnd): number {
  const bodyStart = at + msgHeaderSize;
  const length = bytes.length;
  if (bodyStart > length) return -1;
  const size = dboxMessageSizeIfSound(bytes, at, msgHeaderSize);
  if (size < 0 || size > length - bodyStart) return -1;
  const bodyEnd = bodyStart + size;
  // DBOX_MAGIC_POST, "\n\x01\x03\n", byte by byte: no loop over a typed array's length.
  if (bodyEnd + 4 > length || bytes[bodyEnd] !== LF || bytes[bodyEnd + 1] !== 0x01 || bytes[bodyEnd + 2] !== 0x03 || bytes[bodyEnd + 3] !== LF) return -1;
  out.bodyEnd = bodyEnd;
  return findDboxMetadataEnd(bytes, bodyEnd) ?? -1;
}
