import type { FetchField, Mailbox } from "../index.js";

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

export type FetchRow = Record<string, string | string[]>;

/**
 * The rows `mailstore fetch` prints for messages `uids` of `box`, one at a
 * time: `fields` (FETCH_FIELDS, checked by the caller) in the order asked,
 * values as doveadm prints them, except `flags`: an array of flag and
 * keyword names (no \Recent).
 */
export async function* fetchRows(box: Mailbox, uids: readonly number[], fields: readonly CliFetchField[]): AsyncGenerator<FetchRow> {
  const apiFields = [...new Set(fields.map((f) => API_FIELDS[f]).filter((f) => f !== undefined))];
  for await (const message of box.fetch(uids, apiFields)) {
    const row: FetchRow = {};
    for (const field of fields) {
      const value = field === "mailbox" ? box.name : message[API_FIELDS[field]!];
      row[field] = Array.isArray(value) ? value : value instanceof Uint8Array ? Buffer.from(value).toString("utf8") : String(value);
    }
    yield row;
  }
}

/** One message in doveadm's default ("pager") layout: `field: value` lines, text fields on their own lines; messages are separated by \f. */
export function pagerText(row: FetchRow): string {
  return Object.entries(row).map(([k, v]) => {
    const value = Array.isArray(v) ? v.join(" ") : v;
    return k === "text" ? `${k}:\n${value}` : `${k}: ${value}\n`;
  }).join("");
}
