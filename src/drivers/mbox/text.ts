/**
 * The bytes of an mbox message as Dovecot shows them (`doveadm fetch text`,
 * IMAP BODY[]): the header without Dovecot's own seven headers
 * (metadata-headers.ts; a hidden header's continuation lines go with it),
 * then everything from the end of the header to the message end, unchanged.
 * Observed: a saved `From: a@b\nSubject: x\n\nbody\n` reads back exactly so,
 * while the file also holds X-IMAPbase, X-UID, Status, X-Keywords and
 * Content-Length lines.
 */
import type { ByteSource } from "./source.js";
import { isMboxHiddenHeader, mayBeMboxHiddenHeader } from "./metadata-headers.js";
import { indexOfByte } from "./scan.js";
import type { MboxMessage } from "./scan.js";

const LF = 0x0a;
const COLON = 0x3a;
const NAME_PROBE_BYTES = 64;

/** @returns true when the header line at `pos` names a hidden header (its name is read from the first bytes). */
function isHiddenHeaderLine(src: ByteSource, pos: number, end: number): boolean {
  const bytes = src.read(pos, Math.min(NAME_PROBE_BYTES, end - pos));
  const probe = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const colon = probe.indexOf(COLON);
  return colon > 0 && isMboxHiddenHeader(probe.subarray(0, colon).toString("latin1").trimEnd());
}

/**
 * @returns the header lines of `msg` that are not hidden, as [offset, end) ranges.
 */
export function visibleHeaderRanges(src: ByteSource, msg: MboxMessage): Array<readonly [number, number]> {
  const ranges: Array<[number, number]> = [];
  let pos = msg.headerOffset;
  let hiding = false;
  while (pos < msg.headerEndOffset) {
    const first = src.byteAt(pos);
    const continued = first === 0x20 || first === 0x09;
    // A line that cannot be one of the hidden headers by its first byte (most) is shown without reading its name.
    if (!continued) hiding = mayBeMboxHiddenHeader(first) && isHiddenHeaderLine(src, pos, msg.headerEndOffset);
    const lf = indexOfByte(src, LF, pos, msg.headerEndOffset);
    const end = lf < 0 ? msg.headerEndOffset : lf + 1;
    if (!hiding) {
      const last = ranges.at(-1);
      if (last && last[1] === pos) last[1] = end;
      else ranges.push([pos, end]);
    }
    pos = end;
  }
  return ranges;
}

/**
 * `visible`: visibleHeaderRanges(src, msg), when the caller has them already.
 * @returns the message text Dovecot serves for `msg`: visible header lines,
 *   then the bytes from the end of the header to the end of the message.
 *   Allocates the message's size, once: each range goes straight from the
 *   source's window into the result (a copy per range and then their
 *   concatenation made an import allocate the mbox two more times over).
 */
export function mboxMessageText(src: ByteSource, msg: MboxMessage, visible: ReadonlyArray<readonly [number, number]> = visibleHeaderRanges(src, msg)): Uint8Array {
  const rest = msg.endOffset - msg.headerEndOffset;
  const out = Buffer.allocUnsafe(visible.reduce((n, [from, to]) => n + (to - from), rest));
  let at = 0;
  const copy = (from: number, to: number) => {
    // Copied before the next read: a read's result is a view into the source's window.
    const part = src.read(from, to - from);
    out.set(part, at);
    at += part.length;
  };
  for (const [from, to] of visible) copy(from, to);
  copy(msg.headerEndOffset, msg.endOffset);
  return at === out.length ? out : out.subarray(0, at);
}

/** @returns the body bytes of `msg` (a copy). */
export function mboxMessageBody(src: ByteSource, msg: MboxMessage): Uint8Array {
  return Uint8Array.from(src.read(msg.bodyOffset, msg.endOffset - msg.bodyOffset));
}
