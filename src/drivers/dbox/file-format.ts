/**
 * Whole dbox files (dbox.md §2): a header line, then messages, each a
 * 30-byte header, the body bytes and a metadata block. An sdbox `u.N` holds
 * exactly one message, an mdbox `m.N` one or more, back to back.
 *
 * Decoding walks the bytes with one cursor and returns bodies as views of
 * the input: nothing is copied, and nothing is allocated in proportion to a
 * size field, so a hostile size cannot make us allocate more than the file.
 */
import { MailCorruptedError } from "../../shared/errors.js";
import { decodeDboxFileHeader, encodeDboxFileHeader, DBOX_MSG_HEADER_SIZE, type DboxFileHeader } from "./file-header.js";
import type { DboxItem, DboxSource } from "./item.js";
import { dboxMessageSizeIfSound, decodeDboxMessageHeader, writeDboxMessageHeader } from "./message-header.js";
import { dboxMetadataSize, decodeDboxMetadata, writeDboxMetadata } from "./metadata.js";

/** One stored message. */
export interface DboxMessage {
  /** File offset of the message header: what an mdbox map record stores as offset. */
  readonly offset: number;
  /** Header + body + metadata block: what an mdbox map record stores as size. */
  readonly size: number;
  /** The stored body bytes (a view of the decoded buffer, not a copy). */
  readonly body: Uint8Array;
  /** Metadata items in file order. */
  readonly metadata: readonly DboxItem[];
}

/** A message to encode: body bytes plus metadata items. */
export interface DboxMessageInput {
  readonly body: Uint8Array;
  readonly metadata: readonly DboxItem[];
}

export interface DboxFile {
  readonly header: DboxFileHeader;
  /** Length of the header line: the offset of the first message. */
  readonly headerSize: number;
  readonly messages: DboxMessage[];
}

/**
 * Decodes the message whose header starts at `bytes[at]`.
 * `source.baseOffset` is the file offset of `bytes[0]` (when `bytes` is a
 * window read from a larger file); offsets in the result and in errors are
 * file offsets.
 * @returns the message; its `body` is a view of `bytes`.
 * @throws MailCorruptedError when the header is truncated or malformed, the
 *   body reaches past the end of `bytes`, or the metadata block is bad.
 */
export function decodeDboxMessageAt(bytes: Uint8Array, at: number, msgHeaderSize: number, source: DboxSource = {}): DboxMessage {
  const base = source.baseOffset ?? 0;
  const bodyStart = at + msgHeaderSize;
  const bodyEnd = dboxBodyEnd(bytes, at, msgHeaderSize, source);
  const { items, end } = decodeDboxMetadata(bytes, bodyEnd, { path: source.path, baseOffset: base });
  return { offset: base + at, size: end - at, body: bytes.subarray(bodyStart, bodyEnd), metadata: items };
}

/**
 * Where the body of the message whose header starts at `bytes[at]` ends
 * (its metadata block starts); `source` as decodeDboxMessageAt(). A number,
 * not an object: a purge asks for every message of the files it rewrites.
 * @throws MailCorruptedError when the header is truncated or malformed, or
 *   the body reaches past the end of `bytes`.
 */
export function dboxBodyEnd(bytes: Uint8Array, at: number, msgHeaderSize: number, source: DboxSource = {}): number {
  const bodyStart = at + msgHeaderSize;
  const size = bodyStart <= bytes.length ? dboxMessageSizeIfSound(bytes, at, msgHeaderSize) : -1;
  if (size >= 0 && size <= bytes.length - bodyStart) return bodyStart + size;
  const where = { path: source.path, offset: (source.baseOffset ?? 0) + at };
  if (at + msgHeaderSize > bytes.length) {
    throw new MailCorruptedError(`message header is truncated (${bytes.length - at} of ${msgHeaderSize} bytes)`, where);
  }
  const messageSize = decodeDboxMessageHeader(bytes, at, msgHeaderSize, where);
  // A sound header whose (untrusted) size reaches too far.
  throw new MailCorruptedError(`message size ${messageSize} reaches past the end of the file`, where);
}

/**
 * Yields the messages from `start` (an offset in `bytes`, normally the
 * header line's length) to the end of `bytes`, lazily.
 * @throws MailCorruptedError at the first bad message, including trailing
 *   bytes too short to be a message.
 */
export function* iterateDboxMessages(
  bytes: Uint8Array,
  start: number,
  msgHeaderSize: number,
  source: DboxSource = {},
): Generator<DboxMessage, void, undefined> {
  const base = source.baseOffset ?? 0;
  let at = start;
  while (at < bytes.length) {
    const message = decodeDboxMessageAt(bytes, at, msgHeaderSize, source);
    yield message;
    at = message.offset - base + message.size;
  }
}

/**
 * Decodes a whole u.N or m.N file.
 * @returns the header and every message with its offset.
 * @throws MailCorruptedError naming `source.path` and the offset of the problem.
 */
export function decodeDboxFile(bytes: Uint8Array, source: DboxSource = {}): DboxFile {
  const { header, headerSize } = decodeDboxFileHeader(bytes, source);
  const messages = [...iterateDboxMessages(bytes, headerSize, header.msgHeaderSize, source)];
  return { header, headerSize, messages };
}

/**
 * Decodes an sdbox `u.N` file, which must hold exactly one message.
 * @throws MailCorruptedError as decodeDboxFile(), or when the file holds no
 *   message or more than one.
 */
export function decodeSdboxFile(bytes: Uint8Array, source: DboxSource = {}): DboxFile & { message: DboxMessage } {
  const file = decodeDboxFile(bytes, source);
  if (file.messages.length !== 1) {
    const offset = (source.baseOffset ?? 0) + (file.messages.length === 0 ? file.headerSize : file.messages[1].offset);
    throw new MailCorruptedError(`sdbox file holds ${file.messages.length} messages, not 1`, { path: source.path, offset });
  }
  return { ...file, message: file.messages[0] };
}

/** @returns the stored size of a message (header + body + metadata): the map record's size. */
export function dboxMessageSize(bodySize: number, metadata: readonly DboxItem[]): number {
  return DBOX_MSG_HEADER_SIZE + bodySize + dboxMetadataSize(metadata);
}

/**
 * Encodes one message record (header, body, metadata) as Dovecot writes it.
 * @throws InvalidArgumentError for metadata that cannot be written.
 */
export function encodeDboxMessage(message: DboxMessageInput): Uint8Array {
  const out = new Uint8Array(dboxMessageSize(message.body.length, message.metadata));
  writeDboxMessage(out, 0, message);
  return out;
}

/**
 * Encodes one message record into `out` at `at` (dboxMessageSize() bytes),
 * for a writer that stages records in a buffer of its own.
 * @returns the offset after it.
 */
export function writeDboxMessage(out: Uint8Array, at: number, message: DboxMessageInput): number {
  writeDboxMessageHeader(out, at, message.body.length);
  out.set(message.body, at + DBOX_MSG_HEADER_SIZE);
  return writeDboxMetadata(out, at + DBOX_MSG_HEADER_SIZE + message.body.length, message.metadata);
}

/**
 * Encodes `messages` back to back, as appended to an m.N file.
 * @returns the bytes and, per message, its offset relative to the start of
 *   the returned bytes and its size.
 */
export function encodeDboxMessages(messages: readonly DboxMessageInput[]): { bytes: Uint8Array; records: Array<{ offset: number; size: number }> } {
  const records = messages.map((m) => ({ offset: 0, size: dboxMessageSize(m.body.length, m.metadata) }));
  const out = new Uint8Array(records.reduce((n, r) => n + r.size, 0));
  let at = 0;
  messages.forEach((m, i) => {
    records[i].offset = at;
    at = writeDboxMessage(out, at, m);
  });
  return { bytes: out, records };
}

/**
 * Encodes a whole file: header line and messages. For a file Dovecot wrote,
 * `encodeDboxFile(decodeDboxFile(bytes))` equals `bytes`.
 * @throws InvalidArgumentError when the header's msgHeaderSize is not 30 or
 *   an item cannot be written.
 */
export function encodeDboxFile(file: { header: DboxFileHeader; messages: readonly DboxMessageInput[] }): Uint8Array {
  const head = encodeDboxFileHeader(file.header);
  const { bytes } = encodeDboxMessages(file.messages);
  const out = new Uint8Array(head.length + bytes.length);
  out.set(head, 0);
  out.set(bytes, head.length);
  return out;
}
