import { flagNames } from "../shared/flags.js";
import type { Mailbox } from "../api/mailbox.js";
import { lookupUid } from "../projections/read.js";
import { virtualSizeOf } from "../drivers/dbox/message-body.js";

/** Fields `mailstore fetch` knows, named as doveadm names them. */
export const FETCH_FIELDS = [
  "mailbox", "uid", "seq", "guid", "flags", "modseq", "size.physical", "size.virtual",
  "date.received.unixtime", "date.saved.unixtime", "text",
] as const;

export type FetchRow = Record<string, string | string[]>;

/** size.virtual: the message's size with CRLF line endings, as IMAP RFC822.SIZE. */
export async function virtualSize(box: Mailbox, uid: number): Promise<number> {
  return virtualSizeOf(await box.readMessage(uid));
}

/** One message's fields; `flags` is an array of flag and keyword names (no \Recent). */
export async function fetchRow(box: Mailbox, uid: number, fields: readonly string[]): Promise<FetchRow> {
  const state = box.state;
  const record = lookupUid(state, uid)!;
  const needsInfo = fields.some((f) => f === "guid" || f.startsWith("size.") || f.startsWith("date."));
  const info = needsInfo ? await box.backend.messageInfo(state, uid) : undefined;
  const row: FetchRow = {};
  for (const field of fields) {
    switch (field) {
      case "mailbox": row[field] = box.name; break;
      case "uid": row[field] = String(uid); break;
      case "seq": row[field] = String(record.seq); break;
      case "guid": row[field] = info!.guid; break;
      case "flags": row[field] = [...flagNames(record.flags), ...record.keywords]; break;
      case "modseq": row[field] = String(record.modseq); break;
      case "size.physical": row[field] = String(info!.physicalSize); break;
      case "size.virtual": row[field] = String(await virtualSize(box, uid)); break;
      case "date.received.unixtime": row[field] = String(info!.receivedTime); break;
      case "date.saved.unixtime": row[field] = String(info!.savedTime); break;
      case "text": row[field] = Buffer.from(await box.readMessage(uid)).toString("utf8"); break;
      default: throw new Error(`unknown fetch field ${field}`);
    }
  }
  return row;
}

/** doveadm's default ("pager") layout: `field: value` lines, text fields on their own lines, \f between messages. */
export function pagerText(rows: readonly FetchRow[]): string {
  return rows.map((row) => Object.entries(row).map(([k, v]) => {
    const value = Array.isArray(v) ? v.join(" ") : v;
    return k === "text" ? `${k}:\n${value}` : `${k}: ${value}\n`;
  }).join("")).join("\f\n");
}
