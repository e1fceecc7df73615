/**
 * Splitting an mbox file into messages (maildir-mbox.md B2), by Dovecot's
 * rules, with bounded memory: the file is read through small windows of a
 * {@link ByteSource}; only offsets and the values of Dovecot's own headers
 * are kept, never a header or body.
 *
 * Boundaries, as Dovecot's raw mbox stream finds them:
 * - The file must begin with a valid From_ line ending in LF (an empty file
 *   is an empty mbox).
 * - A message ends at the first `\nFrom ` (or `\r\nFrom `) at or after its
 *   header start whose line is a valid From_ line (from-line.ts) ending in
 *   LF. That LF (and a CR before it) is the separator, not message text; so
 *   is the last LF (CRLF) of the file.
 * - There is **no** `>From ` quoting or unquoting: a body line `From …` that
 *   is not a valid From_ line is plain text, and one that is ends the message
 *   unless Content-Length says otherwise:
 * - Content-Length N is trusted when the natural end comes before body+N and
 *   at body+N there is exactly a final LF/CRLF or a separator plus a valid
 *   From_ line. (Dovecot writes Content-Length on every save, so its own
 *   files survive body lines that look like From_ lines.)
 * - The header ends at the first empty line. When the boundary comes first,
 *   the body is empty; an empty line that is also the separator ends the
 *   header (`hdr\n\nFrom …`), and Content-Length then counts from after it.
 *
 * Keywords: X-IMAPbase lists every keyword of the mailbox; observed, a
 * message whose X-Keywords names one that is not in that list loses all its
 * keywords (Dovecot drops the header on its next rewrite).
 *
 * UIDs follow Dovecot's first sync of the file: X-IMAPbase (first message
 * only) sets the next UID to last+1; a valid X-UID must be above the previous
 * message's UID (else it is ignored) and raises the next UID past itself; a
 * message without a usable X-UID gets the next UID (`uidFromHeader` false).
 */
import { MailCorruptedError } from "../../shared/errors.js";
import { MailFlag } from "../../log/types.js";
import { parseFromLine } from "./from-line.js";
import type { ByteSource } from "./source.js";
import { bufferSource } from "./source.js";
import {
  isMboxHiddenHeader,
  mayBeMboxHiddenHeader,
  parseContentLengthValue,
  parseImapBaseValue,
  parseStatusValue,
  parseXStatusValue,
  parseXUidValue,
  splitWords,
} from "./metadata-headers.js";
import type { MboxImapBase } from "./metadata-headers.js";

export interface MboxMessage {
  /** Dovecot's "from offset" (mbox index record): 0, else the offset of the separator's LF (CR with CRLF) before `From `. */
  readonly fromOffset: number;
  /** Offset of `From ` of this message's From_ line. */
  readonly fromLineOffset: number;
  /** First header byte (after the From_ line's LF). */
  readonly headerOffset: number;
  /** Where the header lines end: the start of the empty line, or the body offset when there is none. */
  readonly headerEndOffset: number;
  /** First body byte. */
  readonly bodyOffset: number;
  /** End (exclusive) of the message text; the separator follows. */
  readonly endOffset: number;
  /** Envelope sender of the From_ line. */
  readonly sender: string;
  /** From_ line time (UNIX seconds). */
  readonly receivedTime: number;
  /** Content-Length header value, when present and valid. */
  readonly contentLength?: number;
  /** True when the end was found through Content-Length (the body has a From_ line). */
  readonly endFromContentLength: boolean;
  /** The message's UID (0 for a pseudo message). */
  readonly uid: number;
  /** False when the UID was assigned because X-UID was missing or broken. */
  readonly uidFromHeader: boolean;
  /** MailFlag bits from Status and X-Status. */
  readonly flags: number;
  /** False when Status has `O`. */
  readonly recent: boolean;
  /**
   * Keywords as Dovecot reads them: the X-Keywords names, but none at all
   * when one of them is missing from the X-IMAPbase keyword list.
   */
  readonly keywords: readonly string[];
  /** X-Keywords names missing from the X-IMAPbase list (Dovecot then ignores the whole header). */
  readonly unknownKeywords: readonly string[];
  /** X-IMAPbase / X-IMAP of the first message. */
  readonly imapBase?: MboxImapBase;
  /** The first message carries X-IMAP: Dovecot's hidden "FOLDER INTERNAL DATA" message. */
  readonly pseudo: boolean;
  /**
   * The first X-UID value that reads (digits, then only white space; not 0),
   * before any ordering rule: a driver that knows the index's next UID applies
   * Dovecot's rules itself (mbox-sync-parse.c parse_x_uid).
   */
  readonly rawUid?: number;
  /** Every X-Keywords name, before checking them against a keyword list. */
  readonly rawKeywords: readonly string[];
  /** The separator after this message is CRLF. */
  readonly crlfSeparator: boolean;
}

export interface MboxScanOptions {
  /** File name for errors. */
  readonly path?: string;
  /** Longest From_ line read for validation (longer ones are parsed from their start). */
  readonly maxFromLineBytes?: number;
  /** Most bytes of Dovecot's header values kept per message (default 1 MiB); more is MailCorruptedError. */
  readonly maxMetadataValueBytes?: number;
  /**
   * Start at the message whose "from offset" (index record: 0, or the
   * separator's LF/CR before `From `) this is, instead of the file start.
   * Messages found this way are never the first (X-IMAPbase is not read), and
   * their `uid` follows no UID rule: use `rawUid`.
   * @throws MailCorruptedError when no From_ line is there.
   */
  readonly fromOffset?: number;
}

const LF = 0x0a;
const CR = 0x0d;
const FROM_SEP = Buffer.from("\nFrom ");
const FROM = Buffer.from("From ");
const SEARCH_CHUNK_BYTES = 60 * 1024;
const NAME_PROBE_BYTES = 32;
const utf8 = new TextDecoder();
/**
 * The keyword lists of a message without X-Keywords (nearly all), shared:
 * a first sync of a 100k-message mbox holds every message's at once, and
 * three empty arrays each were 7.6 of its 39 MiB.
 */
export const NO_KEYWORDS: readonly string[] = Object.freeze([]);

function asBuffer(u8: Uint8Array): Buffer {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

/** @returns the first offset >= from (and < limit) where `pattern` starts, or -1. */
export function indexOfBytes(src: ByteSource, pattern: Buffer, from: number, limit: number): number {
  let pos = from;
  while (pos + pattern.length <= limit) {
    const chunk = src.peek(pos, Math.min(SEARCH_CHUNK_BYTES, limit - pos), pattern.length);
    const i = asBuffer(chunk).indexOf(pattern);
    if (i >= 0) return pos + i;
    if (pos + chunk.length >= limit) return -1;
    // Step back so that a match across the chunk's end is still found.
    pos += Math.max(1, chunk.length - (pattern.length - 1));
  }
  return -1;
}

/**
 * indexOfBytes for one byte: searches the source's windows as they are,
 * without a Buffer around each (one per header line cost an import of
 * 20,000 messages tens of milliseconds).
 * @returns the first offset >= from (and < limit) holding `byte`, or -1.
 */
export function indexOfByte(src: ByteSource, byte: number, from: number, limit: number): number {
  let pos = from;
  while (pos < limit) {
    const chunk = src.peek(pos, Math.min(SEARCH_CHUNK_BYTES, limit - pos), 1);
    if (chunk.length === 0) return -1;
    const i = chunk.indexOf(byte);
    if (i >= 0) return pos + i;
    pos += chunk.length;
  }
  return -1;
}

interface FromAt {
  /** Offset of `From `. */
  readonly offset: number;
  /** Offset of the From_ line's LF. */
  readonly lfOffset: number;
  readonly sender: string;
  readonly receivedTime: number;
}

/** @returns the From_ line starting at `offset` when valid and LF-terminated. */
function fromLineAt(src: ByteSource, offset: number, maxBytes: number): FromAt | undefined {
  const head = src.read(offset, FROM.length);
  if (head.length < FROM.length) return undefined;
  for (let i = 0; i < FROM.length; i++) if (head[i] !== FROM[i]) return undefined;
  const bytes = src.read(offset + 5, maxBytes);
  const lf = bytes.indexOf(LF);
  // The line must end in LF; a longer line is judged by its first bytes, as Dovecot does.
  let lfOffset: number;
  let text: string;
  if (lf >= 0) {
    lfOffset = offset + 5 + lf;
    text = utf8.decode(bytes.subarray(0, lf));
  } else {
    text = utf8.decode(bytes);
    lfOffset = indexOfByte(src, LF, offset + 5 + bytes.length, src.size);
    if (lfOffset < 0) return undefined;
  }
  const parsed = parseFromLine(text);
  return parsed === undefined ? undefined : { offset, lfOffset, sender: parsed.sender, receivedTime: parsed.receivedTime };
}

/** @returns the From_ line after the separator (LF or CRLF) at `sepOffset`. */
function fromLineAfterSeparator(src: ByteSource, sepOffset: number, maxBytes: number): FromAt | undefined {
  const b0 = src.byteAt(sepOffset);
  if (b0 === LF) return fromLineAt(src, sepOffset + 1, maxBytes);
  if (b0 === CR && src.byteAt(sepOffset + 1) === LF) return fromLineAt(src, sepOffset + 2, maxBytes);
  return undefined;
}

interface Boundary {
  /** Offset of the separator (its CR, or its LF). */
  readonly sepOffset: number;
  readonly crlf: boolean;
  readonly from: FromAt;
}

/** @returns the first valid `\nFrom ` boundary whose LF is at or after `from`. */
function findBoundary(src: ByteSource, from: number, maxFromLine: number): Boundary | undefined {
  let pos = from;
  for (;;) {
    const lf = indexOfBytes(src, FROM_SEP, pos, src.size);
    if (lf < 0) return undefined;
    const line = fromLineAt(src, lf + 1, maxFromLine);
    if (line) {
      const crlf = lf > from && src.byteAt(lf - 1) === CR;
      return { sepOffset: crlf ? lf - 1 : lf, crlf, from: line };
    }
    pos = lf + 1;
  }
}

/** @returns the boundary at exactly `offset` (a separator + valid From_ line), "eof" for a final LF/CRLF, or undefined. */
function boundaryAt(src: ByteSource, offset: number, maxFromLine: number): Boundary | "eof" | undefined {
  const rest = src.size - offset;
  if (rest < 1) return undefined;
  const b0 = src.byteAt(offset);
  if (rest === 1 && b0 === LF) return "eof";
  if (rest === 2 && b0 === CR && src.byteAt(offset + 1) === LF) return "eof";
  // Dovecot looks only when at least a minimal From_ line can follow (31 bytes).
  if (b0 === LF && rest > 31) {
    const line = fromLineAt(src, offset + 1, maxFromLine);
    return line ? { sepOffset: offset, crlf: false, from: line } : undefined;
  }
  if (b0 === CR && rest > 32 && src.byteAt(offset + 1) === LF) {
    const line = fromLineAt(src, offset + 2, maxFromLine);
    return line ? { sepOffset: offset, crlf: true, from: line } : undefined;
  }
  return undefined;
}

/** @returns true when [from, to) holds only spaces, tabs and a final CR. */
function isBlankRange(src: ByteSource, from: number, to: number): boolean {
  for (let pos = from; pos < to; pos += SEARCH_CHUNK_BYTES) {
    const chunk = src.read(pos, Math.min(SEARCH_CHUNK_BYTES, to - pos));
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (b !== 0x20 && b !== 0x09 && !(b === CR && pos + i === to - 1)) return false;
    }
  }
  return true;
}

/** One logical header of the header block. */
interface HeaderVisit {
  readonly name: string;
  readonly value: string;
  /** Offset of the line where the header starts. */
  readonly offset: number;
}

interface HeaderScan {
  /** LF of the empty line ending the header, if found in range. */
  readonly eohLf?: number;
  /** Start of that empty line (or where the walk stopped). */
  readonly headerEnd: number;
}

/**
 * Walks header lines from `start`: calls `visit` for each of Dovecot's own
 * headers (metadata-headers.ts). Lines are read only as far as needed.
 */
function walkHeaders(
  src: ByteSource,
  start: number,
  textEnd: number,
  regionEnd: number,
  maxValue: number,
  path: string | undefined,
  visit: (h: HeaderVisit) => void,
): HeaderScan {
  let pos = start;
  let current: { name: string; offset: number; parts: string[] } | undefined;
  // One budget for all of Dovecot's headers of the message, so that many
  // repeated headers cannot add up past it either.
  let keptBytes = 0;
  const flush = () => {
    if (current) visit({ name: current.name, value: current.parts.join("\n"), offset: current.offset });
    current = undefined;
  };
  // Appends [from, lineEnd) to the value being collected, trimming a CR and,
  // on the first line, the blanks after the colon.
  const collect = (from: number, lineEnd: number, first: boolean) => {
    const c = current!;
    // A continuation line of blanks only is padding (a rewrite may leave
    // much of it, pieces.ts): it reads as nothing and costs no budget.
    if (!first && isBlankRange(src, from, lineEnd)) return;
    keptBytes += lineEnd - from;
    if (keptBytes > maxValue) {
      throw new MailCorruptedError(`mbox header ${c.name}: Dovecot's headers of this message exceed ${maxValue} bytes`, { path, offset: c.offset });
    }
    let text = utf8.decode(src.read(from, lineEnd - from));
    if (text.endsWith("\r")) text = text.slice(0, -1);
    c.parts.push(first ? text.replace(/^[ \t]+/, "") : text);
  };
  while (pos < regionEnd) {
    const b0 = src.byteAt(pos);
    // An empty line (LF or CRLF) ends the header, even when it is the separator.
    if (b0 === LF) {
      flush();
      return { eohLf: pos, headerEnd: Math.min(pos, textEnd) };
    }
    if (b0 === CR && pos + 1 < regionEnd && src.byteAt(pos + 1) === LF) {
      flush();
      return { eohLf: pos + 1, headerEnd: Math.min(pos, textEnd) };
    }
    if (pos >= textEnd) break;
    const lf = indexOfByte(src, LF, pos, regionEnd);
    const lineEnd = Math.min(lf < 0 ? regionEnd : lf, textEnd);
    if (b0 === 0x20 || b0 === 0x09) {
      if (current) collect(pos, lineEnd, false);
    } else {
      flush();
      // Most lines cannot be one of Dovecot's headers by their first byte: their name is not read.
      const probe = mayBeMboxHiddenHeader(b0) ? asBuffer(src.read(pos, Math.min(NAME_PROBE_BYTES, lineEnd - pos))) : undefined;
      const colon = probe === undefined ? -1 : probe.indexOf(0x3a);
      const name = colon < 0 ? "" : probe!.subarray(0, colon).toString("latin1").trimEnd();
      if (name !== "" && isMboxHiddenHeader(name)) {
        current = { name, offset: pos, parts: [] };
        collect(pos + colon + 1, lineEnd, true);
      }
    }
    if (lf < 0) break;
    pos = lf + 1;
  }
  flush();
  return { headerEnd: Math.min(pos, textEnd) };
}

/**
 * Scans an mbox, yielding one message at a time (the pseudo message
 * included, marked `pseudo`).
 * @throws MailCorruptedError (with path and offset) when the file does not
 *   begin with a valid From_ line, or a message's Dovecot header values
 *   exceed `maxMetadataValueBytes`.
 */
export function* scanMbox(src: ByteSource, opts: MboxScanOptions = {}): Generator<MboxMessage> {
  const maxFromLine = opts.maxFromLineBytes ?? 4096;
  const maxValue = opts.maxMetadataValueBytes ?? 1024 * 1024;
  const size = src.size;
  if (size === 0) return;
  let fromOffset = opts.fromOffset ?? 0;
  let from = fromOffset === 0 ? fromLineAt(src, 0, maxFromLine) : fromLineAfterSeparator(src, fromOffset, maxFromLine);
  if (!from) {
    const what = fromOffset === 0 ? "mbox file doesn't begin with a valid From_ line" : `no valid From_ line after offset ${fromOffset}`;
    throw new MailCorruptedError(what, { path: opts.path, offset: fromOffset });
  }
  let seq = fromOffset === 0 ? 0 : 1;
  let nextUid = 1;
  let prevUid = 0;
  let mailboxKeywords: readonly string[] = [];

  for (;;) {
    seq++;
    // Nothing before this message is read again; its header is, after the search for its end.
    src.keepFrom?.(from.offset);
    const headerOffset = from.lfOffset + 1;
    const natural = findBoundary(src, headerOffset, maxFromLine);
    let naturalEnd: number;
    if (natural) naturalEnd = natural.sepOffset;
    else {
      naturalEnd = size;
      if (size > headerOffset && src.byteAt(size - 1) === LF) {
        naturalEnd = size - 1;
        if (naturalEnd > headerOffset && src.byteAt(naturalEnd - 1) === CR) naturalEnd--;
      }
    }
    // The separator's LF may also end the header (an empty line), so look one separator further.
    const regionEnd = natural ? natural.from.offset : size;

    let contentLength: number | undefined;
    let xUid: number | undefined;
    let rawUid: number | undefined;
    const rawKeywords: string[] = [];
    let sawXUid = false;
    let flags = 0;
    let old = false;
    const keywords: string[] = [];
    let imapBase: MboxImapBase | undefined;
    let pseudo = false;
    const hdr = walkHeaders(src, headerOffset, naturalEnd, regionEnd, maxValue, opts.path, (h) => {
      switch (h.name.toLowerCase()) {
        case "content-length": {
          const v = parseContentLengthValue(h.value);
          if (v !== undefined && contentLength === undefined) contentLength = v;
          break;
        }
        case "status": {
          const s = parseStatusValue(h.value);
          flags |= s.flags;
          old ||= s.old;
          break;
        }
        case "x-status":
          flags |= parseXStatusValue(h.value);
          break;
        case "x-keywords":
          keywords.push(...splitWords(h.value));
          rawKeywords.push(...splitWords(h.value));
          break;
        case "x-imapbase":
        case "x-imap": {
          if (seq !== 1 || imapBase !== undefined) break;
          const base = parseImapBaseValue(h.value);
          if (!base) break;
          imapBase = base;
          mailboxKeywords = base.keywords;
          nextUid = Math.max(base.uidLast + 1, prevUid + 1);
          if (h.name.toLowerCase() === "x-imap") pseudo = true;
          break;
        }
        case "x-uid": {
          if (sawXUid) break;
          const v = parseXUidValue(h.value);
          if (v === undefined) break;
          rawUid ??= v;
          if (v >= nextUid) nextUid = v + 1;
          if (v <= prevUid) break;
          sawXUid = true;
          xUid = v;
          prevUid = v;
          break;
        }
      }
    });

    const trueBodyStart = hdr.eohLf !== undefined ? hdr.eohLf + 1 : naturalEnd;
    let bodyOffset = Math.min(trueBodyStart, naturalEnd);
    let endOffset = naturalEnd;
    let next: Boundary | "eof" | undefined = natural;
    let endFromContentLength = false;
    if (contentLength !== undefined && naturalEnd - trueBodyStart < contentLength) {
      const at = boundaryAt(src, trueBodyStart + contentLength, maxFromLine);
      if (at !== undefined) {
        endOffset = trueBodyStart + contentLength;
        bodyOffset = trueBodyStart;
        next = at;
        endFromContentLength = true;
      }
    }

    // No Set (nor filtered copy) per message without keywords: a first sync allocates one per message.
    const unknownKeywords = keywords.length === 0 ? NO_KEYWORDS : unknownOf(keywords, mailboxKeywords);

    let uid = 0;
    let uidFromHeader = false;
    if (xUid !== undefined) {
      uid = xUid;
      uidFromHeader = true;
    } else if (!pseudo) {
      uid = nextUid++;
      prevUid = uid;
    }
    const crlfSeparator = next !== undefined && next !== "eof" ? next.crlf : endOffset + 2 === size;
    const message: MboxMessage = {
      fromOffset,
      fromLineOffset: from.offset,
      headerOffset,
      headerEndOffset: Math.min(hdr.headerEnd, bodyOffset),
      bodyOffset,
      endOffset,
      sender: from.sender,
      receivedTime: from.receivedTime,
      ...(contentLength !== undefined ? { contentLength } : {}),
      endFromContentLength,
      uid,
      uidFromHeader,
      flags: flags & (MailFlag.ANSWERED | MailFlag.FLAGGED | MailFlag.DELETED | MailFlag.SEEN | MailFlag.DRAFT),
      recent: !old,
      keywords: unknownKeywords.length === 0 && keywords.length > 0 ? keywords : NO_KEYWORDS,
      unknownKeywords,
      ...(imapBase !== undefined ? { imapBase } : {}),
      pseudo,
      crlfSeparator,
      ...(rawUid !== undefined ? { rawUid } : {}),
      rawKeywords: rawKeywords.length > 0 ? rawKeywords : NO_KEYWORDS,
    };
    yield message;
    if (next === undefined || next === "eof") return;
    fromOffset = next.sepOffset;
    from = next.from;
  }
}

/** The names of `keywords` that `mailboxKeywords` (X-IMAPbase's list) lacks. */
function unknownOf(keywords: readonly string[], mailboxKeywords: readonly string[]): readonly string[] {
  const known = new Set(mailboxKeywords);
  return keywords.filter((k) => !known.has(k));
}

/** The messages of an mbox and its X-IMAPbase. */
export interface ParsedMbox {
  readonly imapBase?: MboxImapBase;
  /** Every message, the pseudo message (if any) included and marked. */
  readonly messages: readonly MboxMessage[];
}

/**
 * Convenience over {@link scanMbox} for bytes in memory.
 * @throws MailCorruptedError as scanMbox.
 */
export function parseMbox(data: Uint8Array, opts: MboxScanOptions = {}): ParsedMbox {
  const messages = [...scanMbox(bufferSource(data), opts)];
  const imapBase = messages[0]?.imapBase;
  return imapBase === undefined ? { messages } : { imapBase, messages };
}
