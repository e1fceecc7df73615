/**
 * Which messages the mailboxes' logs say were expunged, by GUID: every
 * mdbox expunge record carries the message's GUID (as Dovecot writes them).
 * A rebuild uses it not to put back a message that no map record and no
 * mailbox points at when a mailbox expunged it: what a purge killed between
 * its map commit and its unlink leaves in the old m.N file (the map no
 * longer knows those messages at all, so "the map had it at refcount 0"
 * cannot tell).
 */
import { readLog } from "../../log/view.js";
import { isCorruptionError } from "../../shared/errors.js";
import type { MailboxSnapshot } from "./mailbox-refs.js";

/** @returns hex GUIDs expunged in the readable logs of `snapshots` (those read from their log). */
export function expungedGuids(snapshots: readonly MailboxSnapshot[]): Set<string> {
  const out = new Set<string>();
  for (const s of snapshots) {
    if (s.source !== "log") continue;
    let transactions;
    try {
      transactions = readLog(s.prefix).transactions;
    } catch (err) {
      // Read a moment ago; broken since: nothing to learn from it.
      if (!isCorruptionError(err)) throw err;
      continue;
    }
    for (const t of transactions) {
      for (const { record } of t.entries) {
        if (record.type !== "expunge-guid") continue;
        for (const e of record.expunges) if (e.guid.some((b) => b !== 0)) out.add(Buffer.from(e.guid).toString("hex"));
      }
    }
  }
  return out;
}
