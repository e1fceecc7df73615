/**
 * The per-message header (struct dbox_message_header, dbox.md §2.2), 30 bytes:
 *
 * | off | size | content                                          |
 * |----:|-----:|--------------------------------------------------|
 * |   0 |    2 | magic 0x01 0x02 (DBOX_MAGIC_PRE)                 |
 * |   2 |    1 | type 'N' (normal message)                        |
 * |   3 |    1 | ' '                                              |
 * |   4 |    8 | v1 UID field, 8 spaces in v2                     |
 * |  12 |    1 | ' '                                              |
 * |  13 |   16 | message size, uppercase hex, zero padded         |
 * |  29 |    1 | '\n' (always the last byte, even if M > 30)      |
 */
import { InvalidArgumentError, MailCorruptedError } from "../../shared/errors.js";
import { DBOX_MSG_HEADER_SIZE } from "./file-header.js";
import { parseHexBytes } from "./hex.js";

const MAGIC_PRE_0 = 0x01;
const MAGIC_PRE_1 = 0x02;
const SIZE_OFFSET = 13;
const SIZE_DIGITS = 16;
const LF = 0x0a;

/**
 * Reads the message size from the header at `bytes[at]`, which the caller
 * has checked holds `msgHeaderSize` bytes. `fileOffset` is where the header
 * sits in the file, for the error.
 * @returns the body size in bytes.
 * @throws MailCorruptedError when the magic or the final LF is missing or
 *   the size is not hex (Dovecot would read such a size as 0 and then fail
 *   on the metadata magic; we say what is wrong instead).
 */
export function decodeDboxMessageHeader(
  bytes: Uint8Array,
  at: number,
  msgHeaderSize: number,
  where: { path?: string; offset: number },
): number {
  const size = dboxMessageSizeIfSound(bytes, at, msgHeaderSize);
  if (size >= 0) return size;
  if (bytes[at] !== MAGIC_PRE_0 || bytes[at + 1] !== MAGIC_PRE_1) {
    throw new MailCorruptedError("wrong magic in message header", where);
  }
  if (bytes[at + msgHeaderSize - 1] !== LF) {
    throw new MailCorruptedError("message header does not end in LF", where);
  }
  throw new MailCorruptedError("message size field is not a hex number (or is beyond 2^53)", where);
}

/**
 * decodeDboxMessageHeader without the error: the body size, or -1 when
 * the header is malformed. Allocates nothing (a purge reads every header
 * of the files it rewrites).
 */
export function dboxMessageSizeIfSound(bytes: Uint8Array, at: number, msgHeaderSize: number): number {
  if (bytes[at] !== MAGIC_PRE_0 || bytes[at + 1] !== MAGIC_PRE_1 || bytes[at + msgHeaderSize - 1] !== LF) return -1;
  return parseHexBytes(bytes, at + SIZE_OFFSET, at + SIZE_OFFSET + SIZE_DIGITS) ?? -1;
}

const TEMPLATE = new TextEncoder().encode("\x01\x02N          0000000000000000\n");

/**
 * Writes the 30-byte header for a body of `messageSize` bytes into
 * `out[at, at + 30)`, as dbox_msg_header_fill() does.
 * @throws InvalidArgumentError for a negative or non-integer size.
 */
export function writeDboxMessageHeader(out: Uint8Array, at: number, messageSize: number): void {
  if (!Number.isSafeInteger(messageSize) || messageSize < 0) {
    throw new InvalidArgumentError(`invalid dbox message size ${messageSize}`);
  }
  out.set(TEMPLATE, at);
  const hex = messageSize.toString(16).toUpperCase();
  for (let i = 0; i < hex.length; i++) {
    out[at + SIZE_OFFSET + SIZE_DIGITS - hex.length + i] = hex.charCodeAt(i);
  }
}

/** @returns a new 30-byte message header for a body of `messageSize` bytes. */
export function encodeDboxMessageHeader(messageSize: number): Uint8Array {
  const out = new Uint8Array(DBOX_MSG_HEADER_SIZE);
  writeDboxMessageHeader(out, 0, messageSize);
  return out;
}
