/**
 * Regenerating the headers Dovecot keeps its state in (X-IMAPbase, X-UID,
 * Status, X-Status, X-Keywords, Content-Length) inside an existing message's
 * header, the way Dovecot's sync does when flags or keywords change:
 *
 * - every other header line stays, byte for byte and in its order, so the
 *   text IMAP clients see (which hides these headers, text.ts) and the header
 *   MD5 (header-md5.ts) do not change;
 * - the managed headers are written as one block at the end of the header,
 *   in the order of a save (write.ts); old copies (also a stray X-IMAPbase or
 *   X-IMAP outside the first message) are dropped, as Dovecot drops them;
 * - the X-Keywords value carries the padding: to rewrite a header in place
 *   the block is padded to exactly the bytes it replaces (Dovecot's
 *   `mbox_sync_headers_add_space` pads the same header), and when even an
 *   unpadded block does not fit, the file has to be rewritten.
 */
import { InvalidArgumentError } from "../../shared/errors.js";
import { splitHeaderFields } from "./header-fields.js";
import { formatStatusValue, formatXStatusValue, isMboxHiddenHeader } from "./metadata-headers.js";
import { MBOX_KEYWORDS_PADDING } from "./write.js";

/** What the managed headers of one message say. */
export interface ManagedFields {
  readonly uid: number;
  /** MailFlag bits. */
  readonly flags: number;
  readonly keywords: readonly string[];
  /** False writes `O` into Status. */
  readonly recent: boolean;
  /** Body bytes after the empty line (Content-Length). */
  readonly bodyLength: number;
  /** Only for the first message of the file. */
  readonly imapBase?: { readonly uidValidity: number; readonly uidLast: number; readonly keywords: readonly string[] };
}

function checkKeyword(kw: string): void {
  if (kw === "" || /\s/.test(kw)) throw new InvalidArgumentError(`keyword "${kw}" cannot be stored in an mbox header`);
}

/** @returns the managed block with `padding` spaces after the X-Keywords names. */
function block(f: ManagedFields, padding: number): string {
  let out = "";
  if (f.imapBase) {
    out += `X-IMAPbase: ${f.imapBase.uidValidity} ${String(f.imapBase.uidLast).padStart(10, "0")}`;
    for (const kw of f.imapBase.keywords) {
      checkKeyword(kw);
      out += ` ${kw}`;
    }
    out += "\n";
  }
  out += `X-UID: ${f.uid}\n`;
  out += `Status: ${formatStatusValue(f.flags, f.recent)}\n`;
  const xStatus = formatXStatusValue(f.flags);
  if (xStatus !== "") out += `X-Status: ${xStatus}\n`;
  out += "X-Keywords:";
  for (const kw of f.keywords) {
    checkKeyword(kw);
    out += ` ${kw}`;
  }
  out += " ".repeat(padding) + "\n";
  out += `Content-Length: ${f.bodyLength}\n`;
  return out;
}

/** @returns the managed block with the padding a save leaves (room for later flag changes). */
export function defaultManagedBlock(f: ManagedFields): Buffer {
  const padding = MBOX_KEYWORDS_PADDING - `\nContent-Length: ${f.bodyLength}`.length;
  return Buffer.from(block(f, Math.max(padding, 0)), "utf8");
}

/** @returns the header lines of `header` that are not managed, in order. */
export function unmanagedLines(header: Uint8Array): Buffer {
  const kept: Uint8Array[] = [];
  for (const field of splitHeaderFields(header)) {
    if (isMboxHiddenHeader(field.name)) continue;
    const bytes = header.subarray(field.start, field.end);
    kept.push(bytes);
    // A last line without LF (a header cut by EOF) must not run into the block.
    if (bytes[bytes.length - 1] !== 0x0a) kept.push(Buffer.from("\n"));
  }
  return Buffer.concat(kept);
}

/**
 * @returns `header` (the header lines, without the empty line) with its
 *   managed headers regenerated: with the default padding, or when
 *   `exactLength` is given, padded to exactly that many bytes — undefined
 *   when that is too few.
 */
export function rebuildHeader(header: Uint8Array, f: ManagedFields, exactLength?: number): Buffer | undefined {
  const kept = unmanagedLines(header);
  if (exactLength === undefined) return Buffer.concat([kept, defaultManagedBlock(f)]);
  const bare = Buffer.byteLength(block(f, 0), "utf8");
  const room = exactLength - kept.length - bare;
  if (room < 0) return undefined;
  return Buffer.concat([kept, Buffer.from(block(f, room), "utf8")]);
}
