/**
 * The dbox file header line (dbox.md §2.1), common to sdbox `u.N` and mdbox
 * `m.N`: `"2 M1e C<hex create time>\n"`. It is followed directly by the first
 * message header, so its length is the offset of the first message.
 */
import { InvalidArgumentError, MailCorruptedError } from "../../shared/errors.js";
import { bytesToString, stringToBytes } from "../../log/bytes.js";
import { formatHexLower, parseHexString } from "./hex.js";
import type { DboxItem, DboxSource } from "./item.js";

/** DBOX_VERSION: the only version Dovecot 2.3 writes (1 is read-only legacy). */
export const DBOX_VERSION = 2;
/** sizeof(struct dbox_message_header): the `M` value Dovecot always writes. */
export const DBOX_MSG_HEADER_SIZE = 30;

const LF = 0x0a;
const SPACE = 0x20;

export interface DboxFileHeader {
  /** Size of each message header in the file (key `M`); Dovecot writes 30. */
  readonly msgHeaderSize: number;
  /** File creation time in UNIX seconds (key `C`); undefined when the line has none. */
  readonly createStamp?: number;
  /**
   * Items Dovecot does not interpret (such as the obsolete `A`), in file
   * order. Encoding writes them after `M` and `C`.
   */
  readonly unknownItems: readonly DboxItem[];
}

export interface DecodedDboxFileHeader {
  readonly header: DboxFileHeader;
  /** Length of the header line including its LF: the offset of the first message. */
  readonly headerSize: number;
}

/**
 * Decodes the header line at the start of `bytes`.
 * @returns the header and the offset where the first message starts.
 * @throws MailCorruptedError (offset 0) when the line has no LF, the version
 *   is not 2, `M` is missing or smaller than 30, or `M`/`C` is not hex.
 */
export function decodeDboxFileHeader(bytes: Uint8Array, source: DboxSource = {}): DecodedDboxFileHeader {
  const where = { path: source.path, offset: source.baseOffset ?? 0 };
  const lf = bytes.indexOf(LF);
  if (lf < 0) throw new MailCorruptedError("file header line is truncated (no LF)", where);
  const line = bytesToString(bytes, 0, lf);

  // Dovecot reads the version as one digit followed by a space.
  if (line.length < 2 || line.charCodeAt(1) !== SPACE || line[0] < "0" || line[0] > "9") {
    throw new MailCorruptedError(`file header line ${JSON.stringify(line.slice(0, 40))} has no version`, where);
  }
  const version = line.charCodeAt(0) - 0x30;
  if (version !== DBOX_VERSION) {
    throw new MailCorruptedError(`unsupported dbox file version ${version}`, where);
  }

  let msgHeaderSize: number | undefined;
  let createStamp: number | undefined;
  const unknownItems: DboxItem[] = [];
  for (const token of line.slice(2).split(" ")) {
    if (token === "") continue;
    const key = token[0];
    const value = token.slice(1);
    if (key === "M") {
      msgHeaderSize = parseHexString(value);
      if (msgHeaderSize === undefined) throw new MailCorruptedError(`invalid msg header size M${value}`, where);
    } else if (key === "C") {
      createStamp = parseHexString(value);
      if (createStamp === undefined) throw new MailCorruptedError(`invalid create stamp C${value}`, where);
    } else {
      unknownItems.push({ key, value });
    }
  }
  if (msgHeaderSize === undefined || msgHeaderSize === 0) {
    throw new MailCorruptedError("file header has no msg header size (M)", where);
  }
  // The size field ends at byte 29 of the message header, so less cannot work.
  if (msgHeaderSize < DBOX_MSG_HEADER_SIZE) {
    throw new MailCorruptedError(`msg header size ${msgHeaderSize} is below ${DBOX_MSG_HEADER_SIZE}`, where);
  }
  const header: DboxFileHeader = createStamp === undefined
    ? { msgHeaderSize, unknownItems }
    : { msgHeaderSize, createStamp, unknownItems };
  return { header, headerSize: lf + 1 };
}

/**
 * Encodes the header line exactly as Dovecot does: `2 M1e C<lowercase hex>\n`.
 * @throws InvalidArgumentError when msgHeaderSize is not 30 (the only size
 *   Dovecot writes and the only one it appends to), or an item holds a space or LF.
 */
export function encodeDboxFileHeader(header: DboxFileHeader): Uint8Array {
  if (header.msgHeaderSize !== DBOX_MSG_HEADER_SIZE) {
    throw new InvalidArgumentError(`dbox msg header size must be ${DBOX_MSG_HEADER_SIZE}, not ${header.msgHeaderSize}`);
  }
  let line = `${DBOX_VERSION} M${formatHexLower(header.msgHeaderSize)}`;
  if (header.createStamp !== undefined) {
    if (!Number.isSafeInteger(header.createStamp) || header.createStamp < 0) {
      throw new InvalidArgumentError(`invalid create stamp ${header.createStamp}`);
    }
    line += ` C${formatHexLower(header.createStamp)}`;
  }
  for (const item of header.unknownItems) {
    if (item.key.length !== 1 || /[ \n]/.test(item.key + item.value)) {
      throw new InvalidArgumentError(`file header item ${JSON.stringify(item.key + item.value)} cannot be written`);
    }
    line += ` ${item.key}${item.value}`;
  }
  return stringToBytes(line + "\n");
}
