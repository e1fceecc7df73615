import type { FetchedMessage, FetchField } from "../index.js";

/** Fields `mailstore fetch` knows, named as doveadm names them. */
export const FETCH_FIELDS = [
  "mailbox", "uid", "seq", "guid", "flags", "modseq", "size.physical", "size.virtual",
  "date.received.unixtime", "date.saved.unixtime", "text",
] as const;

type CliFetchField = (typeof FETCH_FIELDS)[number];

/** The Mailbox.fetch field behind each doveadm field (`mailbox` is the mailbox's name). */
const API_FIELDS: Record<CliFetchField, FetchField | undefined> = {
  mailbox: undefined,
  uid: "uid",
  seq: "seq",
  guid: "guid",
  flags: "flags",
  modseq: "modseq",
  "size.physical": "physicalSize",
  "size.virtual": "virtualSize",
  "date.received.unixtime": "receivedTime",
  "date.saved.unixtime": "savedTime",
  text: "body",
};

/** Field → value; `text` stays bytes (printed as they are, as doveadm prints them). */
export type FetchRow = Record<string, string | string[] | Uint8Array>;

/** The Mailbox.fetch fields that `fields` (FETCH_FIELDS, checked by the caller) need. */
export function apiFieldsOf(fields: readonly CliFetchField[]): FetchField[] {
  return [...new Set(fields.map((f) => API_FIELDS[f]).filter((f) => f !== undefined))];
}

/**
 * The row `mailstore fetch` prints for `message` (fetched with
 * apiFieldsOf(fields)) of mailbox `mailbox`: `fields` in the order asked,
 * values as doveadm prints them, except `flags`: an array of flag and
 * keyword names (no \Recent).
 */
export function rowOf(mailbox: string, message: FetchedMessage, fields: readonly CliFetchField[]): FetchRow {
  const row: FetchRow = {};
  for (const field of fields) {
    const value = field === "mailbox" ? mailbox : message[API_FIELDS[field]!];
    row[field] = Array.isArray(value) || value instanceof Uint8Array ? value : String(value);
  }
  return row;
}

/**
 * Writes one message in doveadm's default ("pager") layout: `field: value`
 * lines, text fields on their own lines (their bytes as stored: a Latin-1
 * body is not turned into U+FFFD); messages are separated by \f. A text
 * field's label is encoded once per field name, not once per message.
 */
export function printPager(row: FetchRow, out: (data: string | Uint8Array) => void): void {
  for (const k in row) {
    const v = row[k];
    if (v instanceof Uint8Array) {
      let label = textLabels.get(k);
      if (label === undefined) textLabels.set(k, (label = Buffer.from(`${k}:\n`)));
      out(label);
      out(v);
    } else out(`${k}: ${Array.isArray(v) ? v.join(" ") : v}\n`);
  }
}

const textLabels = new Map<string, Uint8Array>();

/**
 * Whether doveadm's pager puts "\f\n" between two messages: only when a
 * message starts with a field it prints as a value; one that starts with
 * `text` (printed as a stream) follows the previous one directly (observed
 * with doveadm 2.3.19: `fetch text` has no form feeds, `fetch 'uid text'`
 * has them).
 */
export function pagerSeparates(fields: readonly string[]): boolean {
  return fields[0] !== "text";
}

/** A row for JSON output: bytes as UTF-8 text (JSON has no bytes). */
export function jsonRow(row: FetchRow): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(row)) out[k] = v instanceof Uint8Array ? Buffer.from(v).toString("utf8") : v;
  return out;
}
