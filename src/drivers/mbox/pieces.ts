/**
 * Messages of an mbox being rewritten in place (in-place.ts), as "pieces"
 * that can be written at any size from a minimum up: the difference is
 * spaces in a header IMAP clients never see — the X-Keywords padding Dovecot
 * itself keeps for later flag changes (X-IMAP's in the pseudo message).
 * That is what lets a rewrite keep the file a sequence of whole messages at
 * every instant: space freed by an expunge, or still needed by a longer
 * header, is carried as padding by a neighbouring message.
 *
 * Large paddings are written as continuation lines of blanks (at most 1,000
 * bytes a line) so that no header line becomes huge; Dovecot and the scanner
 * read blanks in these headers as nothing (mbox-sync-parse.c IS_LWSP_LF).
 */
import { InvalidArgumentError } from "../../shared/errors.js";
import { rebuildHeader, type ManagedFields } from "./managed-headers.js";
import type { MboxMessage } from "./scan.js";

/** One message of the file being written. */
export interface Piece {
  readonly uid?: number;
  /** Its bytes when nothing asks for another size (separator LF included). */
  readonly preferred: Buffer;
  /** Smallest size it can be written at. */
  readonly minSize: number;
  /**
   * Whether it can be written at `size` bytes. Not every size from minSize
   * up: a message without Dovecot's headers has its own size, and then only
   * sizes with the headers added.
   */
  sizeOk(size: number): boolean;
  /** @returns exactly `size` bytes (size ≥ minSize). */
  render(size: number): Buffer;
}

const LF = 0x0a;
const CR = 0x0d;
const PADDED_HEADERS = /^(x-keywords|x-imap|x-imapbase)[ \t]*:/i;
const LINE_BYTES = 1000;

/** Where a unit's padding header field ends, and where its trailing blanks start. */
interface PadSpot {
  /** First blank (space/tab/blank-only continuation line) at the end of the field's value. */
  readonly blankStart: number;
  /** End of the field: its last line's CR or LF. */
  readonly fieldEnd: number;
}

/**
 * @returns the padding spot of `unit` (From_ line, header, …): the first
 *   X-Keywords / X-IMAP / X-IMAPbase field, its trailing blanks and blank
 *   continuation lines; undefined when it has no such field.
 */
function padSpot(unit: Buffer): PadSpot | undefined {
  let pos = unit.indexOf(LF) + 1; // skip the From_ line
  let fieldStart = -1;
  let fieldEnd = -1;
  while (pos > 0 && pos < unit.length) {
    let lf = unit.indexOf(LF, pos);
    if (lf < 0) lf = unit.length;
    const lineEnd = lf > pos && unit[lf - 1] === CR ? lf - 1 : lf;
    if (lineEnd === pos) break; // the empty line: end of the header
    const continued = unit[pos] === 0x20 || unit[pos] === 0x09;
    if (!continued) {
      if (fieldStart >= 0) break; // the padded field has ended
      if (PADDED_HEADERS.test(unit.subarray(pos, Math.min(lineEnd, pos + 16)).toString("latin1"))) fieldStart = pos;
    }
    if (fieldStart >= 0) fieldEnd = lineEnd;
    pos = lf + 1;
  }
  if (fieldStart < 0) return undefined;
  const valueStart = unit.indexOf(0x3a, fieldStart) + 1;
  let blankStart = fieldEnd;
  while (blankStart > valueStart) {
    const b = unit[blankStart - 1];
    if (b !== 0x20 && b !== 0x09 && b !== LF && b !== CR) break;
    blankStart--;
  }
  return { blankStart, fieldEnd };
}

/**
 * Writes `count` blanks into `out` at `at`: spaces, then blank continuation
 * lines when long. In place: a rewrite pads its last message of each window
 * with all the room freed so far (megabytes), a buffer per line was most of
 * the allocation left in an expunge.
 */
function writeBlanks(out: Buffer, at: number, count: number): void {
  out.fill(0x20, at, at + count);
  if (count <= LINE_BYTES) return;
  // Lines "\n" + spaces; the first part stays on the field's own line.
  let pos = at + 100;
  let left = count - 100;
  while (left > 0) {
    let line = Math.min(LINE_BYTES, left);
    if (left - line === 1) line -= 1; // never leave a 1-byte remainder: a line needs "\n" and a blank
    out[pos] = LF;
    pos += line;
    left -= line;
  }
}

/** @returns `unit` with its padding changed so that it is `size` bytes long, or undefined when too short. */
export function padTo(unit: Buffer, size: number): Buffer | undefined {
  if (size === unit.length) return unit;
  const spot = padSpot(unit);
  if (!spot) return undefined;
  const bare = unit.length - (spot.fieldEnd - spot.blankStart);
  if (size < bare) return undefined;
  const out = Buffer.allocUnsafe(size);
  unit.copy(out, 0, 0, spot.blankStart);
  writeBlanks(out, spot.blankStart, size - bare);
  unit.copy(out, spot.blankStart + size - bare, spot.fieldEnd);
  return out;
}

/** @returns the smallest size padTo() can give `unit` (its length when it has no padding header). */
export function minPaddedSize(unit: Buffer): number {
  const spot = padSpot(unit);
  return spot ? unit.length - (spot.fieldEnd - spot.blankStart) : unit.length;
}

/** A piece from complete bytes that carry a padding header (a new message, the pseudo message). */
export function bytesPiece(data: Buffer, uid?: number): Piece {
  const min = minPaddedSize(data);
  if (min === data.length && !padSpot(data)) throw new InvalidArgumentError("an mbox piece needs a padding header");
  return {
    ...(uid !== undefined ? { uid } : {}),
    preferred: data,
    minSize: min,
    sizeOk: (size) => size >= min,
    render: (size) => {
      const out = padTo(data, size);
      if (!out) throw new InvalidArgumentError(`piece cannot be ${size} bytes (min ${min})`);
      return out;
    },
  };
}

/**
 * `unit` — the bytes of `msg` from its From_ line to the next message (or
 * EOF), as the rewrite read them — with the separator LF ensured.
 */
function withSeparator(unit: Buffer, msg: MboxMessage): Buffer {
  return msg.fromLineOffset + unit.length > msg.endOffset ? unit : Buffer.concat([unit, Buffer.from("\n")]);
}

/**
 * A piece for a message that must stay byte for byte (one the index does
 * not know yet, or around such). `unit`: its bytes as the rewrite read them
 * (kept, not copied: valid as long as the rewrite holds the piece).
 */
export function verbatimPiece(unit: Buffer, msg: MboxMessage, uid?: number): Piece {
  const bytes = withSeparator(unit, msg);
  return {
    ...(uid !== undefined ? { uid } : {}),
    preferred: bytes,
    minSize: bytes.length,
    sizeOk: (size) => size === bytes.length,
    render: (size) => {
      if (size !== bytes.length) throw new InvalidArgumentError("a message the index does not know cannot carry padding");
      return bytes;
    },
  };
}

/**
 * A piece for an existing message. With `rewrite`, its managed headers are
 * regenerated from `fields` (default padding); otherwise its bytes stay as
 * they are unless another size is asked for — then the managed headers are
 * regenerated too (which completes a header an MDA left without them).
 *
 * `bytes`: the message as the rewrite read it, from its From_ line to the
 * next message (a view of the rewrite's read block, valid as long as the
 * rewrite holds the piece: no copy per message). The regenerated form is
 * built from it, and only when asked for: most messages of a rewrite are
 * moved as they are.
 */
export function messagePiece(bytes: Buffer, msg: MboxMessage, fields: ManagedFields, rewrite: boolean): Piece {
  const unit = withSeparator(bytes, msg);
  return paddablePiece(fields.uid, unit, () => regenerated(unit, msg, fields), rewrite);
}

/**
 * A piece for a message moved as it is (`unit`, from its From_ line to the
 * next one, separator LF included) whose managed headers are regenerated
 * only if another size is asked of it (it carries padding): `parse` then
 * says where its header is within `unit` and what the headers say. For a
 * rewrite that knows its messages from the index, not from a scan.
 */
export function movedPiece(unit: Buffer, uid: number, parse: () => { msg: MboxMessage; fields: ManagedFields }): Piece {
  return paddablePiece(
    uid,
    unit,
    () => {
      const { msg, fields } = parse();
      return regenerated(unit, msg, fields);
    },
    false,
  );
}

/** `unit`, or — when `rewrite`, or asked for another size — what `regenerate` makes of it, padded. */
function paddablePiece(uid: number, unit: Buffer, regenerate: () => Buffer, rewrite: boolean): Piece {
  let rebuiltBytes: Buffer | undefined;
  const rebuilt = () => (rebuiltBytes ??= regenerate());
  let rebuiltMinSize: number | undefined;
  const rebuiltMin = () => (rebuiltMinSize ??= minPaddedSize(rebuilt()));
  const preferred = rewrite ? rebuilt() : unit;
  return {
    uid,
    preferred,
    get minSize() {
      return Math.min(preferred.length, rebuiltMin());
    },
    sizeOk: (size) => size === preferred.length || size >= rebuiltMin(),
    render: (size) => {
      if (size === preferred.length) return preferred;
      const out = padTo(rebuilt(), size);
      if (!out) throw new InvalidArgumentError(`message ${uid} cannot be ${size} bytes (min ${Math.min(preferred.length, rebuiltMin())})`);
      return out;
    },
  };
}

/** `unit` (a copy of `msg` from its From_ line on) with its managed headers regenerated from `fields`. */
function regenerated(unit: Buffer, msg: MboxMessage, fields: ManagedFields): Buffer {
  const at = (offset: number) => offset - msg.fromLineOffset;
  return Buffer.concat([
    unit.subarray(0, at(msg.headerOffset)),
    rebuildHeader(unit.subarray(at(msg.headerOffset), at(msg.headerEndOffset)), fields)!,
    unit.subarray(at(msg.headerEndOffset), at(msg.endOffset)),
    Buffer.from("\n"),
  ]);
}
