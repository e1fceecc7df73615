/**
 * Reading messages out of a mailbox as appends for another (COPY, MOVE):
 * bytes, flags, keywords, INTERNALDATE and GUID, as Dovecot's copy keeps them.
 */
import type { UidRange } from "../log/types.js";
import { flagNames } from "../shared/flags.js";
import { lookupUid } from "../projections/read.js";
import type { Mailbox } from "./mailbox.js";
import { existingUids, normalizeRanges } from "./uid-ranges.js";

export interface MessageCopy {
  /** The message's UID in the source. */
  readonly uid: number;
  /** What MailboxTransaction.append takes. */
  readonly input: { body: Uint8Array; flags: string[]; receivedDate: Date; guid: string; copyOf: { mailbox: Mailbox; uid: number } };
}

/** The messages of `uids` that exist in `source` now, in UID order, as appends. */
export async function readCopies(source: Mailbox, uids: readonly UidRange[]): Promise<MessageCopy[]> {
  const state = await source.refresh();
  const copies: MessageCopy[] = [];
  for (const uid of existingUids(state, normalizeRanges(uids))) {
    const record = lookupUid(state, uid)!;
    const info = await source.backend.messageInfo(state, uid);
    copies.push({
      uid,
      input: {
        body: await source.backend.readMessage(state, uid),
        flags: [...flagNames(record.flags), ...record.keywords],
        receivedDate: new Date(info.receivedTime * 1000),
        guid: info.guid,
        copyOf: { mailbox: source, uid },
      },
    });
  }
  return copies;
}
