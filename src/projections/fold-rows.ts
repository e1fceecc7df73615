/**
 * What folding records will cost, for the index writer's checkpoint rule:
 * kept beside the appliers (apply-messages.ts, apply-keywords.ts), which are
 * what decides which rows a record changes. Pure.
 */
import type { LogRecord } from "../log/types.js";

/**
 * Rows of a mailbox of `messages` that folding `records` changes, at most:
 * each flag and keyword update's uid ranges counted whole, capped at the
 * mailbox. A flag change of a whole mailbox is 20 bytes of log, far below
 * Dovecot's byte thresholds for rewriting dovecot.index, yet every later
 * open refolds it row by row.
 */
export function foldedRowsOf(records: readonly LogRecord[], messages: number): number {
  let rows = 0;
  for (const r of records) {
    if (r.type === "flag-update") for (const u of r.updates) rows += Math.min(u.uid2 - u.uid1 + 1, messages);
    else if (r.type === "keyword-update" || r.type === "keyword-reset") for (const u of r.ranges) rows += Math.min(u.uid2 - u.uid1 + 1, messages);
  }
  return rows;
}
