/**
 * The headers Dovecot keeps its mbox state in (maildir-mbox.md B3) and how
 * their values read:
 *
 * | header       | value                                                        |
 * |--------------|--------------------------------------------------------------|
 * | `X-IMAPbase` | `<uidvalidity> <last uid, 10 digits> [<keyword>…]` — first message only |
 * | `X-IMAP`     | the same, in a pseudo message ("FOLDER INTERNAL DATA")      |
 * | `X-UID`      | the UID: digits, then only white space                       |
 * | `Status`     | `R` \Seen, `O` not \Recent (any order, other letters ignored)|
 * | `X-Status`   | `A` \Answered, `F` \Flagged, `T` \Draft, `D` \Deleted        |
 * | `X-Keywords` | keyword names separated by white space (padding allowed)     |
 * | `Content-Length` | body length: digits, then only white space               |
 *
 * A value that does not read (X-UID with other characters, X-IMAPbase with
 * UIDVALIDITY 0, …) is ignored, as Dovecot ignores (and later rewrites) it.
 * These seven headers are hidden from the message text IMAP clients see.
 */
import { MailFlag } from "../../log/types.js";

/** Headers Dovecot hides from the message text (mbox_hide_headers). */
export const MBOX_HIDDEN_HEADERS: readonly string[] = ["Content-Length", "Status", "X-IMAP", "X-IMAPbase", "X-Keywords", "X-Status", "X-UID"];
/** Headers Dovecot drops from a message it saves (mbox_save_drop_headers). */
export const MBOX_SAVE_DROP_HEADERS: readonly string[] = [...MBOX_HIDDEN_HEADERS, "X-Delivery-ID"];

const HIDDEN = new Set(MBOX_HIDDEN_HEADERS.map((h) => h.toLowerCase()));
const SAVE_DROP = new Set(MBOX_SAVE_DROP_HEADERS.map((h) => h.toLowerCase()));

/** @returns true when `name` (any case) is one of {@link MBOX_HIDDEN_HEADERS}. */
export function isMboxHiddenHeader(name: string): boolean {
  return HIDDEN.has(name.toLowerCase());
}

/** First bytes of the hidden headers' names, either case (only ASCII letters lower-case to ASCII letters). */
const HIDDEN_FIRST_BYTES = new Uint8Array(256);
for (const name of MBOX_HIDDEN_HEADERS) {
  HIDDEN_FIRST_BYTES[name.toLowerCase().charCodeAt(0)] = 1;
  HIDDEN_FIRST_BYTES[name.toUpperCase().charCodeAt(0)] = 1;
}

/**
 * @returns false when a header line beginning with byte `first` cannot be
 *   one of {@link MBOX_HIDDEN_HEADERS}: readers walking every header line
 *   decode the name only of the few lines that may be (most are From, To,
 *   Subject, Received…).
 */
export function mayBeMboxHiddenHeader(first: number): boolean {
  return HIDDEN_FIRST_BYTES[first] === 1;
}

/** @returns true when Dovecot drops header `name` on save (its own headers, or a `From ` header). */
export function isMboxSaveDroppedHeader(name: string): boolean {
  return SAVE_DROP.has(name.toLowerCase()) || name.startsWith("From ");
}

/** Status letters, in the order Dovecot writes them. */
export const STATUS_LETTERS: ReadonlyArray<readonly [string, number]> = [["R", MailFlag.SEEN]];
/** X-Status letters, in the order Dovecot writes them. */
export const XSTATUS_LETTERS: ReadonlyArray<readonly [string, number]> = [
  ["A", MailFlag.ANSWERED],
  ["F", MailFlag.FLAGGED],
  ["T", MailFlag.DRAFT],
  ["D", MailFlag.DELETED],
];

const LWSP = /[ \t\r\n]/;

/** @returns the value's digits when only white space follows them, else undefined. */
function uintThenSpace(value: string): number | undefined {
  const m = /^(\d*)([\s\S]*)$/.exec(value)!;
  if (m[2] !== "" && !/^[ \t\r\n]*$/.test(m[2])) return undefined;
  return m[1] === "" ? 0 : Number(m[1]);
}

/** @returns the MailFlag bits and whether `O` ("old", i.e. not \Recent) is set. */
export function parseStatusValue(value: string): { flags: number; old: boolean } {
  return { flags: value.includes("R") ? MailFlag.SEEN : 0, old: value.includes("O") };
}

/** @returns the MailFlag bits of an X-Status value. */
export function parseXStatusValue(value: string): number {
  let flags = 0;
  for (const [letter, bit] of XSTATUS_LETTERS) if (value.includes(letter)) flags |= bit;
  return flags;
}

/** @returns the UID of an X-UID value, or undefined when Dovecot would call it broken. */
export function parseXUidValue(value: string): number | undefined {
  const uid = uintThenSpace(value);
  return uid === undefined || uid === 0 || uid > 0xffffffff ? undefined : uid;
}

/** @returns the Content-Length, or undefined when not digits followed by white space. */
export function parseContentLengthValue(value: string): number | undefined {
  return uintThenSpace(value);
}

/** X-IMAPbase / X-IMAP content. */
export interface MboxImapBase {
  readonly uidValidity: number;
  /** The highest UID used so far (next UID − 1). */
  readonly uidLast: number;
  /** Every keyword the mailbox knows; the order numbers them. */
  readonly keywords: readonly string[];
}

/** @returns the parsed value, or undefined when UIDVALIDITY is missing or 0. */
export function parseImapBaseValue(value: string): MboxImapBase | undefined {
  // Two C strtoul() calls: leading white space, then digits (none = 0).
  const first = /^[ \t\r\n]*(\d*)/.exec(value)!;
  const second = /^[ \t\r\n]*(\d*)/.exec(value.slice(first[0].length))!;
  const uidValidity = first[1] === "" ? 0 : Number(first[1]);
  if (uidValidity === 0 || uidValidity > 0xffffffff) return undefined;
  const uidLast = second[1] === "" ? 0 : Number(second[1]);
  const keywords = splitWords(value.slice(first[0].length + second[0].length));
  return { uidValidity, uidLast, keywords };
}

/** @returns the white-space separated words of a header value. */
export function splitWords(value: string): string[] {
  return value.split(LWSP).filter((w) => w !== "");
}

/** @returns the Status value Dovecot writes: `R` for \Seen, then `O` unless \Recent. */
export function formatStatusValue(flags: number, recent: boolean): string {
  return ((flags & MailFlag.SEEN) !== 0 ? "R" : "") + (recent ? "" : "O");
}

/** @returns the X-Status value Dovecot writes (`A F T D` order), "" for none. */
export function formatXStatusValue(flags: number): string {
  return XSTATUS_LETTERS.filter(([, bit]) => (flags & bit) !== 0)
    .map(([l]) => l)
    .join("");
}
