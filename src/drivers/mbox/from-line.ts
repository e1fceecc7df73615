/**
 * mbox From_ lines (maildir-mbox.md B2).
 *
 * Written by Dovecot: `From <sender>  <Www Mmm DD HH:MM:SS YYYY>\n` — two
 * spaces, English names, day zero padded, local time of the server. Observed:
 * `From oracle@vm  Mon Nov 23 09:40:07 2026`; the pseudo message Dovecot
 * writes into an emptied mbox uses the sender `MAILER_DAEMON` (underscore),
 * a save with an empty envelope `MAILER-DAEMON`.
 *
 * Accepted when reading — what makes a line a message boundary, so it must be
 * exactly as lenient as Dovecot (facts from lib-mail/mbox-from.c, our code):
 * - sender: up to the first space; a leading `"…"` part (with `\` escapes)
 *   may contain spaces; no CR/LF. Then any number of spaces.
 * - at least 21 more bytes (counting the LF); 4 bytes are skipped unchecked (weekday and space);
 * - asctime form: `Mmm [ ]D[D] HH:MM[:SS] [<zone name> ]YYYY[ ±hhmm]…`
 *   (month case-insensitive, `???` counts as January, a non-digit word before
 *   the year is skipped, a `±hhmm` after the year is the time zone, anything
 *   after that is ignored);
 * - or the RFC 822 form `Www, D[D] Mmm YYYY HH:MM[:SS]`.
 * Without a time zone the date is local time.
 */

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/** A parsed From_ line (the part after `From `). */
export interface FromLine {
  readonly sender: string;
  /** Receive time in UNIX seconds (local time when the line has no zone). */
  readonly receivedTime: number;
  /** Zone offset in minutes east of UTC, when the line has one. */
  readonly tzOffsetMinutes?: number;
}

function monthAt(s: string, i: number): number {
  const word = s.slice(i, i + 3);
  const idx = MONTHS.findIndex((m) => m.toLowerCase() === word.toLowerCase());
  if (idx >= 0) return idx;
  return word === "???" ? 0 : -1;
}

/** @returns the number the `n` digits at `i` spell (no slice and no regex: an import parses a From_ line per message). */
function digits(s: string, i: number, n: number): number | undefined {
  if (i < 0 || i + n > s.length) return undefined;
  let value = 0;
  for (let k = i; k < i + n; k++) {
    const d = s.charCodeAt(k) - 0x30;
    if (d < 0 || d > 9) return undefined;
    value = value * 10 + d;
  }
  return value;
}

/** Reads the sender; @returns its end index, or -1 when it has a CR or LF. */
function senderEnd(s: string): number {
  let i = 0;
  if (s[0] === '"') {
    let escaped = false;
    i = 1;
    while (i < s.length && (s[i] !== '"' || escaped)) {
      if (s[i] === "\r" || s[i] === "\n") return -1;
      escaped = s[i] === "\\";
      i++;
    }
    i++;
  }
  while (i < s.length && s[i] !== " ") {
    if (s[i] === "\r" || s[i] === "\n") return -1;
    i++;
  }
  return Math.min(i, s.length);
}

interface DateFields {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  tzSecs?: number;
}

function parseTime(s: string, i: number): { hour: number; minute: number; second: number; next: number } | undefined {
  const hour = digits(s, i, 2);
  if (hour === undefined || s[i + 2] !== ":") return undefined;
  const minute = digits(s, i + 3, 2);
  if (minute === undefined) return undefined;
  let next = i + 5;
  let second = 0;
  if (s[next] === ":") {
    const sec = digits(s, next + 1, 2);
    if (sec === undefined) return undefined;
    second = sec;
    next += 3;
  }
  return { hour, minute, second, next };
}

/** `Www, D[D] Mmm YYYY HH:MM[:SS]` — i points after the weekday's 4 bytes. */
function parseRfc822Date(s: string, start: number): DateFields | undefined {
  let i = start + 1; // the byte after "Www," (a space)
  const d1 = digits(s, i, 1);
  if (d1 === undefined) return undefined;
  let day = d1;
  i++;
  const d2 = digits(s, i, 1);
  if (d2 !== undefined) {
    day = day * 10 + d2;
    i++;
  }
  if (s[i] !== " ") return undefined;
  i++;
  const month = monthAt(s, i);
  if (month < 0 || s[i + 3] !== " ") return undefined;
  i += 4;
  const year = digits(s, i, 4);
  if (year === undefined) return undefined;
  i += 5; // the year and one separator byte, not checked
  const t = parseTime(s, i);
  if (!t) return undefined;
  return { year, month, day: day === 0 ? 1 : day, hour: t.hour, minute: t.minute, second: t.second };
}

/** `Mmm [ ]D[D] HH:MM[:SS] [zone ]YYYY[ ±hhmm]` — i points at the month. */
function parseAsctimeDate(s: string, start: number, month: number): DateFields | undefined {
  let i = start + 4;
  if (s[i] === " ") i++;
  let day: number;
  if (s[i + 1] === " ") {
    const d = digits(s, i, 1);
    if (d === undefined) return undefined;
    day = d;
    i += 2;
  } else {
    const d = digits(s, i, 2);
    if (d === undefined || s[i + 2] !== " ") return undefined;
    day = d;
    i += 3;
  }
  const t = parseTime(s, i);
  if (!t || s[t.next] !== " ") return undefined;
  i = t.next + 1;
  if (digits(s, i, 4) === undefined) {
    // A zone name (or a ±hhmm) before the year: skipped, as Dovecot does.
    while (i < s.length && s[i] !== " ") {
      if (s[i] === "\r" || s[i] === "\n") return undefined;
      i++;
    }
    if (i + 5 > s.length) return undefined;
    i++;
  }
  const year = digits(s, i, 4);
  if (year === undefined) return undefined;
  i += 4;
  const fields: DateFields = { year, month, day: day === 0 ? 1 : day, hour: t.hour, minute: t.minute, second: t.second };
  const zone = /^ ([+-])(\d\d)(\d\d)/.exec(s.slice(i, i + 6));
  if (zone) fields.tzSecs = (zone[1] === "-" ? -1 : 1) * (Number(zone[2]) * 3600 + Number(zone[3]) * 60);
  return fields;
}

/**
 * Parses the text after `From ` (up to, not including, its LF; a CR before
 * the LF is allowed).
 * @returns the sender and time, or undefined when Dovecot would not accept
 *   this line as a From_ line.
 */
export function parseFromLine(afterFrom: string): FromLine | undefined {
  const end = senderEnd(afterFrom);
  if (end < 0) return undefined;
  const sender = afterFrom.slice(0, end);
  let i = end;
  while (afterFrom[i] === " ") i++;
  // Dovecot wants 21 bytes here counting the line's LF, which we are not given.
  if (afterFrom.length - i < 20) return undefined;
  const monthStart = i + 4;
  const month = monthAt(afterFrom, monthStart);
  const f =
    month >= 0 && afterFrom[monthStart + 3] === " "
      ? parseAsctimeDate(afterFrom, monthStart, month)
      : parseRfc822Date(afterFrom, monthStart);
  if (!f) return undefined;
  if (f.tzSecs !== undefined) {
    const utc = Date.UTC(f.year, f.month, f.day, f.hour, f.minute, f.second) / 1000 - f.tzSecs;
    return { sender, receivedTime: utc, tzOffsetMinutes: f.tzSecs / 60 };
  }
  const local = new Date(f.year, f.month, f.day, f.hour, f.minute, f.second).getTime() / 1000;
  return { sender, receivedTime: local };
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * @returns Dovecot's From_ line for `sender` at `unixTime`, with its LF:
 *   `From <sender>  Www Mmm DD HH:MM:SS YYYY\n`, in local time or, when
 *   given, at `utcOffsetMinutes` (Dovecot uses the server's local time).
 */
export function formatFromLine(sender: string, unixTime: number, utcOffsetMinutes?: number): string {
  let year: number, month: number, day: number, wday: number, h: number, m: number, s: number;
  if (utcOffsetMinutes === undefined) {
    const d = new Date(unixTime * 1000);
    [year, month, day, wday, h, m, s] = [d.getFullYear(), d.getMonth(), d.getDate(), d.getDay(), d.getHours(), d.getMinutes(), d.getSeconds()];
  } else {
    const d = new Date((unixTime + utcOffsetMinutes * 60) * 1000);
    [year, month, day, wday, h, m, s] = [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCDay(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()];
  }
  const y = String(year).padStart(4, "0");
  return `From ${sender}  ${WEEKDAYS[wday]} ${MONTHS[month]} ${pad2(day)} ${pad2(h)}:${pad2(m)}:${pad2(s)} ${y}\n`;
}
