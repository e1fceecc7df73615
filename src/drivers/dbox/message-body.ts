/**
 * What dbox does to a message before storing it, and the sizes it records.
 * dbox always stores LF line endings (whatever mail_save_crlf says), and
 * records the virtual size: the size the message would have with CRLF.
 */

const CR = 0x0d;
const LF = 0x0a;

/**
 * Converts every CRLF to LF; a lone CR stays.
 * @returns `bytes` itself when it holds no CRLF, else a new, shorter array.
 */
export function toLfLineEndings(bytes: Uint8Array): Uint8Array {
  // Most messages have no CR at all: one native search instead of a look at every byte.
  if (bytes.indexOf(CR) < 0) return bytes;
  let crlf = 0;
  for (let i = 1; i < bytes.length; i++) if (bytes[i] === LF && bytes[i - 1] === CR) crlf++;
  if (crlf === 0) return bytes;
  const out = new Uint8Array(bytes.length - crlf);
  let o = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === CR && bytes[i + 1] === LF) continue;
    out[o++] = bytes[i];
  }
  return out;
}

/**
 * @returns the virtual size (metadata `V`): the byte count with every LF
 *   that has no CR before it counted as two bytes.
 */
export function virtualSizeOf(bytes: Uint8Array): number {
  let size = bytes.length;
  // From line end to line end by native search, not byte by byte in a loop.
  for (let i = bytes.indexOf(LF); i >= 0; i = bytes.indexOf(LF, i + 1)) if (i === 0 || bytes[i - 1] !== CR) size++;
  return size;
}
