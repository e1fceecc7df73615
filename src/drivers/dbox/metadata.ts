/**
 * The metadata block after each message body (dbox.md §2.4):
 *
 *     "\n" 0x01 0x03 "\n"          DBOX_MAGIC_POST
 *     <key char><value> "\n"       zero or more items, in the order written
 *     "\n"                         an empty line ends the block
 *
 * Items are kept as an ordered list, duplicates and unknown keys included,
 * because Dovecot says unknown metadata must be preserved when copying, and
 * because re-encoding that list gives back the same bytes.
 */
import { InvalidArgumentError, MailCorruptedError } from "../../shared/errors.js";
import { bytesToString, stringToBytes } from "../../log/bytes.js";
import { formatHexLower, parseDecimalString, parseHexBytes, parseHexString } from "./hex.js";
import type { DboxItem } from "./item.js";

/** enum dbox_metadata_key: the keys Dovecot 2.3 knows. */
export const DboxMetadataKey = {
  /** Message GUID, normally 32 lowercase hex digits. */
  GUID: "G",
  /** POP3 UIDL overriding the default format. */
  POP3_UIDL: "P",
  /** POP3 message order (decimal), for migrated mail. */
  POP3_ORDER: "O",
  /** Received time, UNIX seconds in hex. */
  RECEIVED_TIME: "R",
  /** Plaintext size in hex, only when it differs from the stored size (compression). */
  PHYSICAL_SIZE: "Z",
  /** Virtual size in hex (every LF counted as CRLF). */
  VIRTUAL_SIZE: "V",
  /** External attachment references `<start> <bytes> <options> <ref>…`. */
  EXT_REF: "X",
  /** Mailbox the message was first saved to; rebuild re-homes orphans there (mdbox). */
  ORIG_MAILBOX: "B",
  /** Obsolete v1 keys: read and preserved, never written by 2.3. */
  OLDV1_EXPUNGED: "E",
  OLDV1_FLAGS: "F",
  OLDV1_KEYWORDS: "K",
  OLDV1_SAVE_TIME: "S",
  OLDV1_SPACE: " ",
} as const;

/** DBOX_MAGIC_POST: the 4 bytes that open every metadata block. */
export const DBOX_MAGIC_POST = Uint8Array.of(0x0a, 0x01, 0x03, 0x0a);

const LF = 0x0a;
const SPACE = 0x20;

const HEX_KEYS = new Set<string>([DboxMetadataKey.RECEIVED_TIME, DboxMetadataKey.VIRTUAL_SIZE, DboxMetadataKey.PHYSICAL_SIZE]);

export interface DecodedDboxMetadata {
  readonly items: DboxItem[];
  /** Index in `bytes` just after the terminating line: where the next message starts. */
  readonly end: number;
}

/**
 * Decodes the metadata block starting at `bytes[at]` (right after a body).
 * `baseOffset` is the file offset of `bytes[0]`, for errors.
 * Like Dovecot, a line starting with a space (v1 padding) also ends the block.
 * @returns the items in file order and the end of the block.
 * @throws MailCorruptedError when the block is truncated, the magic is
 *   wrong, no empty line ends it before the end of `bytes`, or an `R`, `V`,
 *   `Z` value is not hex or an `O` value not decimal.
 */
export function decodeDboxMetadata(bytes: Uint8Array, at: number, where: { path?: string; baseOffset?: number } = {}): DecodedDboxMetadata {
  const items: DboxItem[] = [];
  const end = walkDboxMetadata(bytes, at, where, (key, start, stop) => {
    items.push({ key: String.fromCharCode(key), value: bytesToString(bytes, start, stop) });
  });
  return { items, end };
}

/**
 * Walks the metadata block starting at `bytes[at]` item by item, checking
 * each value as decodeDboxMetadata() documents, and calls `onItem` with the
 * key byte and the value's range in `bytes` (nothing is allocated per item).
 * @param more the file goes on past `bytes` (a window over it): a block that
 *   does not end within them gives -1, so the caller reads more and walks
 *   again, instead of an error (one walk, not a search for the end first).
 * @returns the index after the terminating line, or -1 (only with `more`).
 * @throws MailCorruptedError as decodeDboxMetadata().
 */
export function walkDboxMetadata(
  bytes: Uint8Array,
  at: number,
  where: { path?: string; baseOffset?: number },
  onItem: (key: number, valueStart: number, valueEnd: number) => void,
  more = false,
): number {
  const base = where.baseOffset ?? 0;
  const path = where.path;
  if (more && at + DBOX_MAGIC_POST.length > bytes.length) return -1;
  checkMetadataMagic(bytes, at, path, base);
  let pos = at + DBOX_MAGIC_POST.length;
  for (;;) {
    const lf = bytes.indexOf(LF, pos);
    if (lf < 0) {
      if (more) return -1;
      throw new MailCorruptedError("missing end-of-metadata line", { path, offset: base + pos });
    }
    if (lf === pos || bytes[pos] === SPACE) return lf + 1;
    checkValue(bytes, pos, lf, path, base + pos);
    onItem(bytes[pos], pos + 1, lf);
    pos = lf + 1;
  }
}

/** @throws MailCorruptedError unless DBOX_MAGIC_POST is at `bytes[at]`. */
function checkMetadataMagic(bytes: Uint8Array, at: number, path: string | undefined, base: number): void {
  if (at + DBOX_MAGIC_POST.length > bytes.length) {
    throw new MailCorruptedError("metadata block is missing (file ends after the body)", { path, offset: base + at });
  }
  for (let i = 0; i < DBOX_MAGIC_POST.length; i++) {
    if (bytes[at + i] !== DBOX_MAGIC_POST[i]) {
      throw new MailCorruptedError("invalid metadata magic after the body", { path, offset: base + at });
    }
  }
}

/**
 * Finds where the metadata block starting at `bytes[at]` ends, without
 * checking it: used to learn how much of a file to read before decoding.
 * @returns the index after the terminating line, or undefined when `bytes`
 *   (or what was read of them, up to `limit`) ends first.
 */
export function findDboxMetadataEnd(bytes: Uint8Array, at: number, limit = bytes.length): number | undefined {
  let pos = at + DBOX_MAGIC_POST.length;
  if (pos > limit) return undefined;
  // A loop over the bytes, not indexOf: the block's lines are short, and TypedArray indexOf is a call
  // into the runtime per line (a fetch finds every message's end); it also ran past `limit` to the
  // end of the buffer (a 256 KiB read-ahead window) when the line was not all read.
  let line = pos;
  for (; pos < limit; pos++) {
    if (bytes[pos] !== LF) continue;
    if (pos === line || bytes[line] === SPACE) return pos + 1;
    line = pos + 1;
  }
  return undefined;
}

/** 1 for the key bytes whose value is checked (hex keys and `O`), by byte: a load per item line, not a Set lookup. */
const CHECKED_KEY_BYTES = (() => {
  const t = new Uint8Array(256);
  for (const k of [...HEX_KEYS, DboxMetadataKey.POP3_ORDER]) t[k.charCodeAt(0)] = 1;
  return t;
})();
const POP3_ORDER_BYTE = DboxMetadataKey.POP3_ORDER.charCodeAt(0);

/** Checks the item line `bytes[line, lf)` (key byte, then value). */
function checkValue(bytes: Uint8Array, line: number, lf: number, path: string | undefined, offset: number): void {
  const key = bytes[line];
  if (CHECKED_KEY_BYTES[key] === 0) return;
  if (key === POP3_ORDER_BYTE) {
    if (parseDecimalString(bytesToString(bytes, line + 1, lf)) === undefined) throw new MailCorruptedError(`metadata O value ${shownValue(bytes, line, lf)} is not decimal`, { path, offset });
  } else if (parseHexBytes(bytes, line + 1, lf) === undefined) {
    throw new MailCorruptedError(`metadata ${String.fromCharCode(key)} value ${shownValue(bytes, line, lf)} is not hex`, { path, offset });
  }
}

/** The value of the item line `bytes[line, lf)` as an error shows it (40 bytes at most); a function, not a closure made for every value checked. */
function shownValue(bytes: Uint8Array, line: number, lf: number): string {
  return JSON.stringify(bytesToString(bytes, line + 1, Math.min(lf, line + 41)));
}

const GUID_BYTE = DboxMetadataKey.GUID.charCodeAt(0);
const ORIG_MAILBOX_BYTE = DboxMetadataKey.ORIG_MAILBOX.charCodeAt(0);

/**
 * What a rebuild needs of a message's metadata (GUID, original mailbox), as
 * places in the bytes read, into one reused object: no string per message
 * for values that are mostly compared or parsed as bytes. A block is read
 * as decodeDboxMetadata() + readDboxMetadata() would (same checks, first
 * item of a key wins) by `reset()`, then `end = walkDboxMetadata(bytes, at,
 * where, take, more)`: the rebuild's scan does that in its loop, with no
 * function of its own around the walk (V8 compiled such a wrapper as one
 * more hot function, the walk inlined, on other threads).
 */
export class DboxMetadataForRebuild {
  /** Index after the block: where the next message starts. */
  end = 0;
  /** `G`'s value is bytes[guidStart, guidEnd); guidStart -1: no `G`. */
  guidStart = -1;
  guidEnd = -1;
  /** `B`'s value (a storage name, UTF-8) is bytes[origStart, origEnd); origStart -1: no `B`. */
  origStart = -1;
  origEnd = -1;
  /** Forgets the last block's items (`end` is the walk's to set). */
  reset(): void {
    this.guidStart = this.origStart = -1;
  }

  /** walkDboxMetadata's onItem keeping the fields above (the first item of a key wins): made once per object, not per block read. */
  readonly take = (key: number, start: number, stop: number): void => {
    if (key === GUID_BYTE && this.guidStart < 0) {
      this.guidStart = start;
      this.guidEnd = stop;
    } else if (key === ORIG_MAILBOX_BYTE && this.origStart < 0) {
      this.origStart = start;
      this.origEnd = stop;
    }
  };
}

/** @returns the encoded length of the block for `items` (magic to final empty line). */
export function dboxMetadataSize(items: readonly DboxItem[]): number {
  let size = DBOX_MAGIC_POST.length + 1;
  for (const item of items) size += 1 + item.value.length + 1;
  return size;
}

/**
 * Writes the block for `items` into `out` at `at` (room checked by the caller
 * with dboxMetadataSize()).
 * @returns the index after the block.
 * @throws InvalidArgumentError when a key is not one character, is a space or
 *   LF, or a value holds an LF or a char above U+00FF (values are byte strings).
 */
export function writeDboxMetadata(out: Uint8Array, at: number, items: readonly DboxItem[]): number {
  out.set(DBOX_MAGIC_POST, at);
  let pos = at + DBOX_MAGIC_POST.length;
  for (const { key, value } of items) {
    // A space or LF key, or an LF in a value, would end the block early.
    if (key.length !== 1 || key === " " || key === "\n" || value.includes("\n")) {
      throw new InvalidArgumentError(`metadata item ${JSON.stringify(key + value)} cannot be written`);
    }
    out[pos++] = key.charCodeAt(0);
    // Byte by byte into `out`: no array per item (four per saved message).
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c > 0xff) throw new InvalidArgumentError(`metadata item ${JSON.stringify(key + value)} cannot be written`);
      out[pos++] = c;
    }
    out[pos++] = LF;
  }
  out[pos++] = LF;
  return pos;
}

/** @returns the encoded metadata block for `items`; throws as writeDboxMetadata(). */
export function encodeDboxMetadata(items: readonly DboxItem[]): Uint8Array {
  const out = new Uint8Array(dboxMetadataSize(items));
  writeDboxMetadata(out, 0, items);
  return out;
}

/** The metadata Dovecot 2.3 interprets, as typed values. */
export interface DboxMetadata {
  /** `G`: message GUID string. */
  readonly guid?: string;
  /** `R`: received time, UNIX seconds. */
  readonly receivedTime?: number;
  /** `V`: virtual size (LF counted as CRLF). */
  readonly virtualSize?: number;
  /** `Z`: plaintext size when the stored body is transformed (compressed). */
  readonly physicalSize?: number;
  /** `P`: POP3 UIDL. */
  readonly pop3Uidl?: string;
  /** `O`: POP3 order. */
  readonly pop3Order?: number;
  /** `B`: original mailbox name (UTF-8). */
  readonly origMailbox?: string;
  /** `X`: external attachment references, unparsed. */
  readonly extRefs?: string;
}

const utf8 = new TextDecoder("utf-8");

function textOf(value: string): string {
  return utf8.decode(stringToBytes(value));
}

/** `bytes[start, end)` decoded as UTF-8 (as textOf(), without the detour through a string when it is ASCII). */
export function textAt(bytes: Uint8Array, start: number, end: number): string {
  for (let i = start; i < end; i++) if (bytes[i] >= 0x80) return utf8.decode(bytes.subarray(start, end));
  return bytesToString(bytes, start, end);
}

/**
 * Typed view of `items`. For a repeated key the first item wins, as in
 * dbox_file_metadata_get(). Text values are decoded as UTF-8.
 * @returns the known fields present; a numeric value that does not parse is
 *   left out (decodeDboxMetadata() already rejects those in files).
 */
export function readDboxMetadata(items: readonly DboxItem[]): DboxMetadata {
  const first = new Map<string, string>();
  for (const { key, value } of items) if (!first.has(key)) first.set(key, value);
  const text = (key: string) => {
    const v = first.get(key);
    return v === undefined ? undefined : textOf(v);
  };
  const number = (key: string, parse: (v: string) => number | undefined) => {
    const v = first.get(key);
    return v === undefined ? undefined : parse(v);
  };
  const fields: { -readonly [K in keyof DboxMetadata]: DboxMetadata[K] } = {
    guid: text(DboxMetadataKey.GUID),
    receivedTime: number(DboxMetadataKey.RECEIVED_TIME, parseHexString),
    virtualSize: number(DboxMetadataKey.VIRTUAL_SIZE, parseHexString),
    physicalSize: number(DboxMetadataKey.PHYSICAL_SIZE, parseHexString),
    pop3Uidl: text(DboxMetadataKey.POP3_UIDL),
    pop3Order: number(DboxMetadataKey.POP3_ORDER, parseDecimalString),
    origMailbox: text(DboxMetadataKey.ORIG_MAILBOX),
    extRefs: text(DboxMetadataKey.EXT_REF),
  };
  // Leave absent keys out, so that results compare equal with toEqual-style checks.
  for (const k of Object.keys(fields) as Array<keyof DboxMetadata>) if (fields[k] === undefined) delete fields[k];
  return fields;
}

/** What a new message's metadata holds; see DboxMetadata for each field. */
export interface NewDboxMetadata {
  readonly guid: string;
  readonly receivedTime: number;
  readonly virtualSize: number;
  readonly physicalSize?: number;
  readonly pop3Uidl?: string;
  readonly pop3Order?: number;
  /** mdbox only: Dovecot writes `B` for mdbox saves and never for sdbox. */
  readonly origMailbox?: string;
  readonly extRefs?: string;
  /** Further items to carry (unknown keys copied from another file), written last. */
  readonly extra?: readonly DboxItem[];
}

function textItem(key: string, text: string): DboxItem {
  // CR too: Dovecot leaves out a B name holding CR or LF, we refuse it loudly.
  if (/[\r\n]/.test(text)) throw new InvalidArgumentError(`metadata ${key} value must not contain CR or LF`);
  return { key, value: Buffer.from(text, "utf8").toString("latin1") };
}

function numberItem(key: string, n: number): DboxItem {
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`metadata ${key} value ${n} is not a non-negative integer`);
  return { key, value: formatHexLower(n) };
}

/**
 * Builds the items for a new message in the order Dovecot 2.3 writes them:
 * `[Z] R V [P] [O] G [B] [X]`, then `extra`.
 * @returns the item list for encodeDboxMetadata() / encodeDboxMessage().
 * @throws InvalidArgumentError for a negative or fractional number, a text
 *   value holding CR or LF, or an empty GUID.
 */
export function buildDboxMetadata(m: NewDboxMetadata): DboxItem[] {
  if (m.guid === "") throw new InvalidArgumentError("message GUID must not be empty");
  const items: DboxItem[] = [];
  if (m.physicalSize !== undefined) items.push(numberItem(DboxMetadataKey.PHYSICAL_SIZE, m.physicalSize));
  items.push(numberItem(DboxMetadataKey.RECEIVED_TIME, m.receivedTime));
  items.push(numberItem(DboxMetadataKey.VIRTUAL_SIZE, m.virtualSize));
  if (m.pop3Uidl !== undefined) items.push(textItem(DboxMetadataKey.POP3_UIDL, m.pop3Uidl));
  if (m.pop3Order !== undefined) {
    if (!Number.isSafeInteger(m.pop3Order) || m.pop3Order < 0) throw new InvalidArgumentError(`invalid POP3 order ${m.pop3Order}`);
    items.push({ key: DboxMetadataKey.POP3_ORDER, value: String(m.pop3Order) });
  }
  items.push(textItem(DboxMetadataKey.GUID, m.guid));
  if (m.origMailbox !== undefined) items.push(textItem(DboxMetadataKey.ORIG_MAILBOX, m.origMailbox));
  if (m.extRefs !== undefined) items.push(textItem(DboxMetadataKey.EXT_REF, m.extRefs));
  if (m.extra !== undefined) items.push(...m.extra);
  return items;
}
