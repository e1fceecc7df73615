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

/** What {@link walkHeaderLines} tells of each line of a header block. */
export interface HeaderLineVisitor {
  /** A field's first line: [start, lineEnd) without CR LF; the next line starts at `next`. */
  field(start: number, lineEnd: number, next: number): void;
  /** A line continuing the field before it (it begins with a space or tab). */
  continuation(start: number, lineEnd: number, next: number): void;
}

/**
 * Walks the lines of `block` as splitHeaderFields groups them, building
 * nothing: a reader that wants a few fields (header-md5.ts) reads the names
 * of those lines only (names and value arrays of every field were most of
 * the cost of hashing 20,000 headers).
 */
export function walkHeaderLines(block: Uint8Array, visitor: HeaderLineVisitor): void {
  let pos = 0;
  while (pos < block.length) {
    const [lineEnd, next] = lineAt(block, pos);
    if (pos > 0 && isBlank(block[pos])) visitor.continuation(pos, lineEnd, next);
    else visitor.field(pos, lineEnd, next);
    pos = next;
  }
}

/**
 * @returns, for the field line [start, lineEnd), where its name ends (blanks
 *   before the colon removed) and where its value starts (after the colon
 *   and one blank), or -1 for a line without a colon (all name, no value).
 */
export function fieldNameAt(block: Uint8Array, start: number, lineEnd: number): readonly [nameEnd: number, valueStart: number] {
  const colon = block.subarray(start, lineEnd).indexOf(COLON);
  if (colon < 0) return [lineEnd, -1];
  let nameEnd = start + colon;
  while (nameEnd > start && isBlank(block[nameEnd - 1])) nameEnd--;
  let valueStart = start + colon + 1;
  if (valueStart < lineEnd && isBlank(block[valueStart])) valueStart++;
  return [nameEnd, valueStart];
}

/** @returns the field name [start, nameEnd) as written. */
export function fieldName(block: Uint8Array, start: number, nameEnd: number): string {
  return Buffer.from(block.buffer, block.byteOffset + start, nameEnd - start).toString("latin1");
}

/**
 * @returns the fields of `block` (header lines without the empty line that
 *   ends the header), in order; they cover the block without gaps.
 */
export function splitHeaderFields(block: Uint8Array): HeaderField[] {
  const fields: Array<{ name: string; start: number; end: number; values: Array<[number, number]> }> = [];
  walkHeaderLines(block, {
    field(start, lineEnd, next) {
      const [nameEnd, valueStart] = fieldNameAt(block, start, lineEnd);
      fields.push({ name: fieldName(block, start, nameEnd), start, end: next, values: valueStart < 0 ? [] : [[valueStart, lineEnd]] });
    },
    continuation(start, lineEnd, next) {
      const current = fields[fields.length - 1];
      current.values.push([start, lineEnd]);
      current.end = next;
    },
  });
  return fields;
}
