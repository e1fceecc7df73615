/**
 * Splitting a message's header block into fields the way Dovecot's header
 * parser does (lib-mail/message-header-parser.c), for the two jobs that need
 * whole fields: regenerating Dovecot's own headers (managed-headers.ts) and
 * hashing the identifying headers (header-md5.ts).
 *
 * - A field is a line plus the lines after it that begin with a space or tab.
 * - The name is what precedes the colon, blanks before the colon removed; a
 *   line without a colon is all name and has no value.
 * - The first line's value starts after the colon and ONE blank (the parser
 *   runs without SKIP_INITIAL_LWSP); a continuation line's value is the whole
 *   line, leading blanks included. Values never include the CR LF.
 */

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;

function isBlank(b: number): boolean {
  return b === 0x20 || b === 0x09;
}

/** One header field of a header block. */
export interface HeaderField {
  /** The name as written, blanks before the colon removed ("" for an empty name). */
  readonly name: string;
  /** Start of the field in the block. */
  readonly start: number;
  /** End of the field (exclusive): after the LF of its last line, or the block end. */
  readonly end: number;
  /** Per physical line, the value's [start, end) in the block (no CR LF). */
  readonly values: ReadonlyArray<readonly [number, number]>;
}

/** @returns [lineEnd without CR/LF, next line start]. */
function lineAt(block: Uint8Array, pos: number): [number, number] {
  let lf = block.indexOf(LF, pos);
  if (lf < 0) lf = block.length;
  const end = lf > pos && block[lf - 1] === CR ? lf - 1 : lf;
  return [end, Math.min(lf + 1, block.length)];
}

/**
 * @returns the fields of `block` (header lines without the empty line that
 *   ends the header), in order; they cover the block without gaps.
 */
export function splitHeaderFields(block: Uint8Array): HeaderField[] {
  const fields: Array<{ name: string; start: number; end: number; values: Array<[number, number]> }> = [];
  let pos = 0;
  while (pos < block.length) {
    const [lineEnd, next] = lineAt(block, pos);
    const current = fields[fields.length - 1];
    if (current !== undefined && isBlank(block[pos])) {
      current.values.push([pos, lineEnd]);
      current.end = next;
    } else {
      const colon = block.subarray(pos, lineEnd).indexOf(COLON);
      if (colon < 0) {
        fields.push({ name: Buffer.from(block.subarray(pos, lineEnd)).toString("latin1"), start: pos, end: next, values: [] });
      } else {
        let nameEnd = pos + colon;
        while (nameEnd > pos && isBlank(block[nameEnd - 1])) nameEnd--;
        let valueStart = pos + colon + 1;
        if (valueStart < lineEnd && isBlank(block[valueStart])) valueStart++;
        const name = Buffer.from(block.subarray(pos, nameEnd)).toString("latin1");
        fields.push({ name, start: pos, end: next, values: [[valueStart, lineEnd]] });
      }
    }
    pos = next;
  }
  return fields;
}
