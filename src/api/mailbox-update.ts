/**
 * Mailbox.update: Dovecot's mailbox_update for the two fields an import
 * (dsync, `mailstore import`) needs to keep another mailbox's numbering:
 * a UIDVALIDITY for a mailbox that has no messages, and a minimum next UID.
 *
 * What Dovecot logs (doveadm 2.3.19 `mailbox update --uid-validity 12345
 * --min-next-uid 7`, read back with `doveadm dump`): one HEADER_UPDATE
 * record, not EXTERNAL, with one patch over the fields that change (a
 * merged 8-byte patch at offset 24 when both do, `uid_validity = 12345,
 * next_uid = 7`). A next UID below the current one is left alone: next_uid
 * never shrinks. Formats that repeat the values in their files (Maildir's
 * dovecot-uidlist, mbox's X-IMAPbase) write them there first
 * (MailboxBackend.updateMailbox).
 */
import type { HeaderPatch, LogRecord } from "../log/types.js";
import { messageCount } from "../projections/read.js";
import type { IndexMapState } from "../projections/state.js";
import { InvalidArgumentError } from "../shared/errors.js";
import type { CommitResult, Mailbox } from "./mailbox.js";

/** What to change (Dovecot's struct mailbox_update); absent fields stay. */
export interface MailboxUpdate {
  /**
   * The new UIDVALIDITY (1 … 2³²−1). Only while the mailbox has no messages:
   * a client that cached UIDs under the old one must not find other
   * messages under the same numbers.
   */
  uidValidity?: number;
  /** Raise the next UID to at least this (never lowered). */
  minNextUid?: number;
}

/** Offsets of uid_validity and next_uid in struct mail_index_header. */
export const UID_VALIDITY_OFFSET = 24;
export const NEXT_UID_OFFSET = 28;

/**
 * Applies `update` to `mailbox` in one log transaction (none when nothing
 * changes).
 * @returns the log range written, or undefined when nothing changed.
 * @throws InvalidArgumentError for a value out of range, or a UIDVALIDITY
 *   change while the mailbox has messages.
 */
export async function updateMailbox(mailbox: Mailbox, update: MailboxUpdate): Promise<CommitResult | undefined> {
  checkUid32("uidValidity", update.uidValidity);
  checkUid32("minNextUid", update.minNextUid);
  return mailbox.commitWith(async (state) => {
    const values = changedValues(state, update);
    if (values.uidValidity === undefined && values.nextUid === undefined) return [];
    const fileRecords = (await mailbox.backend.updateMailbox?.(state, values)) ?? [];
    return [[headerUpdateRecord(values), ...fileRecords]];
  }, { changesMessages: false });
}

/** The fields that really change, checked against the state under the lock. */
function changedValues(state: IndexMapState, update: MailboxUpdate): { uidValidity?: number; nextUid?: number } {
  const out: { uidValidity?: number; nextUid?: number } = {};
  if (update.uidValidity !== undefined && update.uidValidity !== state.header.uidValidity) {
    const count = messageCount(state);
    if (count > 0) throw new InvalidArgumentError(`UIDVALIDITY can change only while the mailbox has no messages (it has ${count})`);
    out.uidValidity = update.uidValidity;
  }
  if (update.minNextUid !== undefined && update.minNextUid > state.header.nextUid) out.nextUid = update.minNextUid;
  return out;
}

/**
 * A base-header update setting the fields given: one patch over them, as
 * Dovecot merges adjacent changed bytes (replication's seeds log both).
 */
export function headerUpdateRecord(values: { uidValidity?: number; nextUid?: number }): LogRecord {
  const data = new Uint8Array(NEXT_UID_OFFSET + 4 - UID_VALIDITY_OFFSET);
  const view = new DataView(data.buffer);
  view.setUint32(0, values.uidValidity ?? 0, true);
  view.setUint32(NEXT_UID_OFFSET - UID_VALIDITY_OFFSET, values.nextUid ?? 0, true);
  let patch: HeaderPatch;
  if (values.uidValidity === undefined) patch = { offset: NEXT_UID_OFFSET, data: data.subarray(NEXT_UID_OFFSET - UID_VALIDITY_OFFSET) };
  else if (values.nextUid === undefined) patch = { offset: UID_VALIDITY_OFFSET, data: data.subarray(0, 4) };
  else patch = { offset: UID_VALIDITY_OFFSET, data };
  return { type: "header-update", external: false, sync: false, patches: [patch] };
}

function checkUid32(name: string, value: number | undefined): void {
  if (value !== undefined && (!Number.isInteger(value) || value < 1 || value > 0xffffffff)) {
    throw new InvalidArgumentError(`mailbox update: ${name} ${value} is not a 32-bit value above 0`);
  }
}
