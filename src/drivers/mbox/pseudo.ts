/**
 * The c-client "FOLDER INTERNAL DATA" pseudo message that Dovecot writes
 * when expunging empties an mbox, so that UIDVALIDITY and the next UID
 * survive (mbox-sync.c mbox_write_pseudo). Observed with doveadm 2.3.19:
 *
 *     From MAILER_DAEMON  Mon Nov 23 10:31:09 2026
 *     Date: Mon, 23 Nov 2026 10:31:09 +0000
 *     From: Mail System Internal Data <MAILER-DAEMON@vm>
 *     Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA
 *     Message-ID: <1795429869@vm>
 *     X-IMAP: 1795429555 0000000002
 *     Status: RO
 *
 *     This text is part of the internal format of your mail folder, …
 *
 * It stays first in the file and is hidden from IMAP (scan.ts marks it
 * `pseudo`). Ours also lists the mailbox's keywords after the UID, as
 * Dovecot's later syncs do, and pads that line so they can grow in place.
 */
import * as os from "node:os";
import { formatFromLine } from "./from-line.js";

const BODY =
  "This text is part of the internal format of your mail folder, and is not\n" +
  "a real message.  It is created automatically by the mail system software.\n" +
  "If deleted, important folder data will be lost, and it will be re-created\n" +
  "with the data reset to initial values.\n";

/** Dovecot's MBOX_HEADER_PADDING. */
const PADDING = 50;

const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** @returns an RFC 822 date in local time, as Dovecot's message_date_create. */
function rfc822Date(unixTime: number): string {
  const d = new Date(unixTime * 1000);
  const offset = -d.getTimezoneOffset();
  const zone = `${offset < 0 ? "-" : "+"}${String(Math.floor(Math.abs(offset) / 60)).padStart(2, "0")}${String(Math.abs(offset) % 60).padStart(2, "0")}`;
  const two = (n: number) => String(n).padStart(2, "0");
  return `${WEEKDAYS[d.getDay()]}, ${d.getDate()} ${MONTHS[d.getMonth()]} ${d.getFullYear()} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${zone}`;
}

/**
 * @returns the pseudo message with its separator LF, to be the whole start
 *   of a file.
 */
export function formatPseudoMessage(uidValidity: number, uidLast: number, keywords: readonly string[], unixTime = Math.floor(Date.now() / 1000)): Buffer {
  const host = os.hostname();
  const imap = `${imapLine(uidValidity, uidLast, keywords)}${" ".repeat(PADDING)}`;
  return Buffer.from(
    formatFromLine("MAILER_DAEMON", unixTime) +
      `Date: ${rfc822Date(unixTime)}\n` +
      `From: Mail System Internal Data <MAILER-DAEMON@${host}>\n` +
      "Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\n" +
      `Message-ID: <${unixTime}@${host}>\n` +
      `${imap}\n` +
      "Status: RO\n" +
      "\n" +
      BODY +
      "\n",
    "utf8",
  );
}

/** The X-IMAP line without padding or LF. */
function imapLine(uidValidity: number, uidLast: number, keywords: readonly string[]): string {
  return `X-IMAP: ${uidValidity} ${String(uidLast).padStart(10, "0")}${keywords.map((k) => ` ${k}`).join("")}`;
}

const X_IMAP_LINE = /^X-IMAP:[^\r\n]*/im;

/**
 * The pseudo message's header lines (`header`, without the empty line) with
 * its X-IMAP line saying `uidValidity`, `uidLast` and `keywords`, written
 * into the line's own padding: the same length, so that it can be written
 * in place.
 * @returns the new header, or undefined when the line has no room for it
 *   (or there is no X-IMAP line).
 */
export function relistPseudoImap(header: Uint8Array, uidValidity: number, uidLast: number, keywords: readonly string[]): Buffer | undefined {
  const text = Buffer.from(header).toString("latin1");
  const m = X_IMAP_LINE.exec(text);
  if (!m) return undefined;
  const line = imapLine(uidValidity, uidLast, keywords);
  if (Buffer.byteLength(line, "latin1") > m[0].length || /[^\x20-\x7e]/.test(line)) return undefined;
  return Buffer.from(text.slice(0, m.index) + line.padEnd(m[0].length, " ") + text.slice(m.index + m[0].length), "latin1");
}
