/**
 * Writing a message into an mbox the way Dovecot's save does (observed with
 * doveadm 2.3.19; maildir-mbox.md B3):
 *
 *     From <sender>  Www Mmm DD HH:MM:SS YYYY\n
 *     <the message's header lines, minus dropped ones>
 *     X-IMAPbase: <uidvalidity> <uid, 10 digits>[ <keyword>…]\n   first message of the file only
 *     X-UID: <uid>\n
 *     Status: [R][O]\n                 always, empty when neither
 *     X-Status: [A][F][T][D]\n         only with one of those flags
 *     X-Keywords:[ <kw>…]<padding>\n   padding: 91 − len("\nContent-Length: <n>") spaces
 *     Content-Length: <body bytes>\n
 *     \n
 *     <body>                           ends with LF (one is added when missing, also to an empty body,
 *                                      but not to an empty message: Content-Length: 0)
 *     \n                               separator
 *
 * The padding is what lets Dovecot rewrite flags later without moving the
 * rest of the file; Content-Length overwrites the end of a 91-space run.
 * Input processing, as observed: CRLF becomes LF everywhere (a lone CR stays);
 * headers Dovecot manages (Content-Length, Status, X-Delivery-ID, X-IMAP,
 * X-IMAPbase, X-Keywords, X-Status, X-UID) and headers whose name starts with
 * `From ` are dropped with their continuation lines; a line without a colon
 * (e.g. `From hdr line`) is kept; no `>From ` quoting is done — a body line
 * that looks like a From_ line is protected only by Content-Length.
 *
 * Dovecot writes X-IMAPbase with the saved UID and no keywords; its sync
 * later rewrites it to the highest UID and appends the mailbox's keywords.
 * `imapBase.keywords` writes that synced form directly. A keyword in
 * X-Keywords must be in that list (or, for a message appended to a mailbox
 * Dovecot already indexed, in the index's keyword list): otherwise Dovecot
 * ignores the message's X-Keywords altogether. Likewise, once Dovecot has an
 * index for the mbox, it renumbers appended messages and ignores their X-UID.
 */
import { InvalidArgumentError } from "../../shared/errors.js";
import { formatFromLine } from "./from-line.js";
import { formatStatusValue, formatXStatusValue, isMboxSaveDroppedHeader } from "./metadata-headers.js";

/** Spaces Dovecot reserves after X-Keywords: MBOX_HEADER_PADDING(50) + 1 + len("Content-Length: \n") + MAX_INT_STRLEN (23 on 64-bit). */
export const MBOX_KEYWORDS_PADDING = 50 + 1 + "Content-Length: \n".length + 23;

export interface MboxImapBaseInput {
  readonly uidValidity: number;
  /** Highest UID used; default the message's UID (what a save writes). */
  readonly uidLast?: number;
  /** The mailbox's keyword list (written after the UID, as Dovecot's sync does). */
  readonly keywords?: readonly string[];
}

export interface MboxMessageInput {
  /** The RFC 822 message. */
  readonly message: Uint8Array | string;
  readonly uid: number;
  /** MailFlag bits. */
  readonly flags?: number;
  readonly keywords?: readonly string[];
  /** Default true: a new message is \Recent, so Status has no `O`. */
  readonly recent?: boolean;
  /** Envelope sender; "" is written as `MAILER-DAEMON`, as Dovecot does. */
  readonly sender: string;
  /** Receive time for the From_ line (UNIX seconds). */
  readonly receivedTime: number;
  /** Zone of the From_ line; default local time (Dovecot uses the server's). */
  readonly utcOffsetMinutes?: number;
  /** Write X-IMAPbase (only for the message at file offset 0). */
  readonly imapBase?: MboxImapBaseInput;
}

const LF = 0x0a;
const CR = 0x0d;

function toBuffer(m: Uint8Array | string): Buffer {
  return typeof m === "string" ? Buffer.from(m, "utf8") : Buffer.from(m.buffer, m.byteOffset, m.byteLength);
}

/** @returns `data` with every CRLF turned into LF. */
function crlfToLf(data: Buffer): Buffer {
  if (data.indexOf(CR) < 0) return data;
  const out = Buffer.allocUnsafe(data.length);
  let n = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === CR && data[i + 1] === LF) continue;
    out[n++] = data[i];
  }
  return out.subarray(0, n);
}

/** @returns [header, body] of an LF-only message; the empty line belongs to neither. */
function splitMessage(data: Buffer): [Buffer, Buffer] {
  if (data[0] === LF) return [data.subarray(0, 0), data.subarray(1)];
  const eoh = data.indexOf("\n\n");
  if (eoh < 0) return [data, data.subarray(data.length)];
  return [data.subarray(0, eoh + 1), data.subarray(eoh + 2)];
}

/** @returns the header lines that Dovecot keeps, each ending in LF. */
function keptHeader(header: Buffer): Buffer {
  const kept: Buffer[] = [];
  let dropping = false;
  let pos = 0;
  while (pos < header.length) {
    let end = header.indexOf(LF, pos);
    end = end < 0 ? header.length : end + 1;
    const line = header.subarray(pos, end);
    if (line[0] !== 0x20 && line[0] !== 0x09) {
      const colon = line.indexOf(0x3a);
      dropping = colon >= 0 && isMboxSaveDroppedHeader(line.subarray(0, colon).toString("latin1").trimEnd());
    }
    if (!dropping) kept.push(line[line.length - 1] === LF ? line : Buffer.concat([line, Buffer.from("\n")]));
    pos = end;
  }
  return Buffer.concat(kept);
}

function checkKeyword(kw: string): void {
  if (kw === "" || /[\s]/.test(kw)) throw new InvalidArgumentError(`keyword "${kw}" cannot be stored in an mbox header`);
}

function checkUid(uid: number, what: string): void {
  if (!Number.isInteger(uid) || uid < 1 || uid > 0xffffffff) throw new InvalidArgumentError(`${what} ${uid} is not a valid UID`);
}

/**
 * @returns Dovecot's metadata header block (without the final empty line)
 *   for a body of `bodyLength` bytes.
 * @throws InvalidArgumentError for an invalid UID or keyword.
 */
export function formatMboxMetadataHeaders(input: Omit<MboxMessageInput, "message" | "sender" | "receivedTime">, bodyLength: number): string {
  checkUid(input.uid, "uid");
  let out = "";
  if (input.imapBase) {
    const base = input.imapBase;
    checkUid(base.uidValidity, "uidvalidity");
    const last = base.uidLast ?? input.uid;
    if (!Number.isInteger(last) || last < 0 || last > 0xffffffff) throw new InvalidArgumentError(`uid last ${last} is not valid`);
    out += `X-IMAPbase: ${base.uidValidity} ${String(last).padStart(10, "0")}`;
    for (const kw of base.keywords ?? []) {
      checkKeyword(kw);
      out += ` ${kw}`;
    }
    out += "\n";
  }
  const flags = input.flags ?? 0;
  out += `X-UID: ${input.uid}\n`;
  out += `Status: ${formatStatusValue(flags, input.recent ?? true)}\n`;
  const xStatus = formatXStatusValue(flags);
  if (xStatus !== "") out += `X-Status: ${xStatus}\n`;
  out += "X-Keywords:";
  for (const kw of input.keywords ?? []) {
    checkKeyword(kw);
    out += ` ${kw}`;
  }
  const contentLength = `\nContent-Length: ${bodyLength}`;
  out += " ".repeat(MBOX_KEYWORDS_PADDING - contentLength.length) + contentLength + "\n";
  return out;
}

/**
 * @returns one message as Dovecot's save lays it out, From_ line to the
 *   separator LF inclusive. Append it to a file that is empty or ends in LF
 *   (Dovecot first adds an LF to a file that does not).
 * @throws InvalidArgumentError for an invalid UID or keyword.
 */
export function formatMboxMessage(input: MboxMessageInput): Buffer {
  const message = crlfToLf(toBuffer(input.message));
  const [rawHeader, rawBody] = splitMessage(message);
  const header = keptHeader(rawHeader);
  // An empty message keeps an empty body (Content-Length: 0), as Dovecot saves it.
  const endsInLf = message.length === 0 || (rawBody.length > 0 && rawBody[rawBody.length - 1] === LF);
  const body = endsInLf ? rawBody : Buffer.concat([rawBody, Buffer.from("\n")]);
  const fromLine = formatFromLine(input.sender === "" ? "MAILER-DAEMON" : input.sender, input.receivedTime, input.utcOffsetMinutes);
  return Buffer.concat([
    Buffer.from(fromLine, "utf8"),
    header,
    Buffer.from(formatMboxMetadataHeaders(input, body.length) + "\n", "utf8"),
    body,
    Buffer.from("\n"),
  ]);
}

/**
 * @returns a whole mbox file: the messages in order, X-IMAPbase in the first
 *   (`imapBase` given here; it is ignored on the messages themselves). Its
 *   keyword list gets every keyword the messages use appended: observed,
 *   Dovecot ignores a message's X-Keywords entirely when one name is not in
 *   that list.
 * @throws InvalidArgumentError when UIDs do not increase, or as formatMboxMessage.
 */
export function formatMbox(imapBase: MboxImapBaseInput, messages: readonly Omit<MboxMessageInput, "imapBase">[]): Buffer {
  const keywords = [...(imapBase.keywords ?? [])];
  for (const m of messages) for (const kw of m.keywords ?? []) if (!keywords.includes(kw)) keywords.push(kw);
  if (keywords.length > 0) imapBase = { ...imapBase, keywords };
  let prev = 0;
  const parts = messages.map((m, i) => {
    if (m.uid <= prev) throw new InvalidArgumentError(`mbox UIDs must increase (${m.uid} after ${prev})`);
    prev = m.uid;
    return formatMboxMessage(i === 0 ? { ...m, imapBase } : m);
  });
  return Buffer.concat(parts);
}
