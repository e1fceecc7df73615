/**
 * Applying a storage event (the storage subject's purge and altmove) to a
 * replica's own store. The shipped map log bytes are not replayed: a
 * replica's map is its own (it re-saves bodies, under its own map_uids and
 * file_ids), so it repeats the change itself, as doveadm would on it:
 * - purge: its own `storage.purge()` (an mdbox replica; other formats
 *   have nothing to purge, as Dovecot's purge is a no-op there). Its
 *   expunges arrived before in stream order, so its refcount-0 messages
 *   are those the primary's purge removed;
 * - altmove: `storage.altMove(mailbox, uids, toAlt)` when its location has
 *   ALT (sdbox, mdbox), for the UIDs its mailbox still has;
 * - subscriptions (their own subject): the replica's list becomes the
 *   shipped one (subscriptions-apply.ts);
 * - a takeover (a promoted store's first word on the subject): nothing.
 * Repeating either is harmless (a purge finds nothing more, a message
 * already in its place stays), so a re-delivered event, or a replica
 * restarted from the stream's start, applies cleanly.
 */
import type { Mailbox } from "../api/mailbox.js";
import type { Storage } from "../api/storage.js";
import { lookupUid } from "../projections/read.js";
import { applySubscriptions } from "./subscriptions-apply.js";
import type { ShippedStorageEvent, StorageOp } from "./wire.js";

/** What a storage event did on the replica: applied, or skipped and why. */
export type StorageEventResult = { applied: true } | { applied: false; reason: string };

/**
 * @param known the replica's primary mailbox GUIDs by name (position-file.ts): a mailbox of that name known as another one is not the altmove's.
 */
export async function applyStorageEvent(
  storage: Storage, open: Map<string, Mailbox>, e: ShippedStorageEvent, known: Readonly<Record<string, string>>,
): Promise<StorageEventResult> {
  const op = e.op;
  if (op.type === "takeover") return { applied: false, reason: "a takeover changes nothing" };
  if (op.type === "subscriptions") return applySubscriptions(storage, op.names);
  if (op.type === "purge") {
    if (storage.format !== "mdbox") return { applied: false, reason: `a ${storage.format} store has nothing to purge` };
    await storage.purge();
    return { applied: true };
  }
  return applyAltMove(storage, open, op, known);
}

async function applyAltMove(
  storage: Storage, open: Map<string, Mailbox>, op: Extract<StorageOp, { type: "altmove" }>, known: Readonly<Record<string, string>>,
): Promise<StorageEventResult> {
  if (storage.location.alt === undefined || (storage.format !== "sdbox" && storage.format !== "mdbox")) {
    return { applied: false, reason: `this ${storage.format} store has no ALT storage` };
  }
  if (known[op.mailbox] !== undefined && known[op.mailbox] !== op.mailboxGuid) return { applied: false, reason: `${op.mailbox} here is another mailbox` };
  if (!(await storage.hasIndex(op.mailbox))) return { applied: false, reason: `${op.mailbox} is not here (renamed or deleted since)` };
  // The replica's open handle when it has one (its state is current); else a look of its own.
  const handle = open.get(op.mailboxGuid);
  const box = handle?.name === op.mailbox ? handle : await storage.openMailbox(op.mailbox);
  let uids: number[];
  try {
    const state = await box.refresh();
    if (box.uidValidity !== op.uidValidity) return { applied: false, reason: `${op.mailbox} here has UIDVALIDITY ${box.uidValidity}, not ${op.uidValidity}` };
    // A message expunged since (a re-delivery) is not there to move.
    uids = op.uids.filter((uid) => lookupUid(state, uid) !== undefined);
  } finally {
    if (box !== handle) await box.close();
  }
  if (uids.length === 0) return { applied: false, reason: `none of the UIDs is in ${op.mailbox}` };
  await storage.altMove(op.mailbox, uids, op.toAlt);
  return { applied: true };
}
