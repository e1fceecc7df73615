import { InvalidArgumentError } from "../shared/errors.js";
import { MailFlag } from "../log/types.js";
import { virtualSizeOf } from "../drivers/dbox/message-body.js";
import { getHeader, highestModseq, messageCount, recentCount, uidAt } from "../projections/read.js";
import { searchUids } from "./search.js";
import type { Mailbox } from "./mailbox.js";

/**
 * `doveadm mailbox status` items, in the order doveadm prints them whatever
 * order they were asked in.
 */
export const STATUS_ITEMS = ["messages", "recent", "uidnext", "uidvalidity", "unseen", "highestmodseq", "vsize", "guid", "firstsaved"] as const;

export type StatusItem = (typeof STATUS_ITEMS)[number];

/** The items answered from the index header (and its modseq extension) alone. */
const HEADER_ITEMS = ["messages", "uidnext", "uidvalidity", "highestmodseq"] as const;

/** A mailbox's status (IMAP STATUS, Dovecot's `mailbox_status` and `mailbox_metadata`). */
export interface MailboxStatus {
  /** Number of messages (EXISTS). */
  messages: number;
  /** Messages at or after the header's first_recent_uid. */
  recent: number;
  uidnext: number;
  uidvalidity: number;
  /** Messages without `\Seen`. */
  unseen: number;
  highestmodseq: bigint;
  /** Sum of the messages' virtual sizes (CRLF line endings, as RFC822.SIZE): reads every message. */
  vsize: number;
  /** The mailbox GUID (see `Mailbox.guid()`); null while the mailbox has none. */
  guid: string | null;
  /** When the first message was saved, UNIX seconds; null in an empty mailbox (doveadm prints "never"). */
  firstsaved: number | null;
}

/**
 * The status `items` of `box`'s current state: one state throughout, even
 * if a commit advances the mailbox while `vsize` reads messages. The state
 * is what the mailbox last saw: `refresh()` first to include other writers.
 * @returns an object with exactly the asked items, keys in STATUS_ITEMS order.
 * @throws InvalidArgumentError for an item not in STATUS_ITEMS.
 */
export async function mailboxStatus<T extends StatusItem>(box: Mailbox, items: readonly T[]): Promise<Pick<MailboxStatus, T>> {
  const unknown = items.filter((item) => !(STATUS_ITEMS as readonly string[]).includes(item));
  if (unknown.length > 0) throw new InvalidArgumentError(`unknown status item(s): ${unknown.join(" ")}`);
  // Items of the header alone need no row read: a status of a fresh process reads dovecot.index's header only.
  const state = items.every((item) => (HEADER_ITEMS as readonly string[]).includes(item)) ? box.headerState : box.state;
  const backend = box.backend;
  const out: Partial<Record<StatusItem, unknown>> = {};
  for (const item of STATUS_ITEMS) {
    if (!items.includes(item as T)) continue;
    switch (item) {
      case "messages": out[item] = messageCount(state); break;
      case "recent": out[item] = recentCount(state); break;
      case "uidnext": out[item] = getHeader(state).nextUid; break;
      case "uidvalidity": out[item] = getHeader(state).uidValidity; break;
      case "unseen": out[item] = searchUids(state, [{ type: "flag", flag: MailFlag.SEEN, set: false }]).length; break;
      case "highestmodseq": out[item] = highestModseq(state); break;
      case "vsize": {
        // Dovecot's STATUS vsize: the sum of the messages' virtual (CRLF) sizes.
        let sum = 0;
        for (let seq = 1; seq <= messageCount(state); seq++) sum += virtualSizeOf(await backend.readMessage(state, uidAt(state, seq)));
        out[item] = sum;
        break;
      }
      case "guid": out[item] = backend.mailboxGuid(state) ?? null; break;
      case "firstsaved":
        // index_mailbox_get_first_save_date: the save date of the first message.
        out[item] = messageCount(state) === 0 ? null : (await backend.messageInfo(state, uidAt(state, 1))).savedTime;
        break;
    }
  }
  return out as Pick<MailboxStatus, T>;
}
