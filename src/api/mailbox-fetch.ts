import { assertNever, InvalidArgumentError } from "../shared/errors.js";
import { flagNames } from "../shared/flags.js";
import { virtualSizeOf } from "../drivers/dbox/message-body.js";
import { lookupUid } from "../projections/read.js";
import type { Mailbox } from "./mailbox.js";

/** What `Mailbox.fetch` can return of a message (doveadm's fetch fields, Dovecot's `mail_get_*`). */
export const FETCH_FIELDS = ["uid", "seq", "guid", "flags", "modseq", "physicalSize", "virtualSize", "receivedTime", "savedTime", "body"] as const;

export type FetchField = (typeof FETCH_FIELDS)[number];

/** One message's fields; a fetch returns `uid` and the fields asked for. */
export interface FetchedMessage {
  uid: number;
  /** 1-based sequence number in the state fetched from. */
  seq: number;
  /** The message GUID (`doveadm fetch guid`): dbox/Maildir's stored GUID, mbox's header MD5. */
  guid: string;
  /** System flag names then keywords (no `\Recent`). */
  flags: string[];
  modseq: bigint;
  /** Bytes as stored. */
  physicalSize: number;
  /** Bytes with CRLF line endings (IMAP RFC822.SIZE). */
  virtualSize: number;
  /** IMAP INTERNALDATE, UNIX seconds. */
  receivedTime: number;
  /** When the message was saved into this mailbox, UNIX seconds. */
  savedTime: number;
  /** The stored bytes. */
  body: Uint8Array;
}

/** How a fetch hands out what it read. */
export interface FetchOptions {
  /**
   * `body` may be a view of a buffer the fetch reads its next message into:
   * valid until the iterator is asked for the next message. For a consumer
   * that is done with each body by then: one that copies it (the CLI copies
   * it into its output buffer), not one that hands it to `stream.write()` or
   * `socket.write()` and moves on (a stream keeps a reference to what it
   * cannot send at once: copy, or wait for the write's callback or 'drain').
   * A body-only fetch (`body`, `virtualSize`) then reads every message but
   * those larger than 256 KiB through one reused buffer instead of fresh
   * memory (mdbox; other formats read each message into memory of its own;
   * `guid`, sizes and dates still read each message's stored info apart).
   */
  readonly transientBodies?: boolean;
}

/**
 * `fields` of the messages `uids`, one message at a time and in the order
 * given, from the mailbox's state when iteration starts (`refresh()` first
 * to include other writers). UIDs not in that state are skipped, as IMAP's
 * UID FETCH does. Bodies are read only for `body` and `virtualSize`, stored
 * message info only for `guid`, sizes and dates.
 * @throws InvalidArgumentError for a field not in FETCH_FIELDS (on the first `next()`).
 */
export async function* fetchMessages<F extends FetchField>(box: Mailbox, uids: Iterable<number>, fields: readonly F[], options: FetchOptions = {}): AsyncGenerator<Pick<FetchedMessage, F | "uid">, void, undefined> {
  const unknown = fields.filter((f) => !(FETCH_FIELDS as readonly string[]).includes(f));
  if (unknown.length > 0) throw new InvalidArgumentError(`unknown fetch field(s): ${unknown.join(" ")}`);
  const wanted = new Set<FetchField>(fields);
  // An array walked per message, not the set: no iterator per message.
  const order = [...wanted];
  const needsInfo = wanted.has("guid") || wanted.has("physicalSize") || wanted.has("receivedTime") || wanted.has("savedTime");
  const needsBody = wanted.has("body") || wanted.has("virtualSize");
  // The whole record (keywords, modseq) only when a field needs it: a body fetch only asks whether the uid exists.
  const needsRecord = wanted.has("seq") || wanted.has("flags") || wanted.has("modseq");
  const state = box.state;
  const backend = box.backend;
  // Read synchronously where the format can: no promise per message besides the yield's (issue #11).
  const readBody = needsBody ? backend.messageReader?.(state, { transient: options.transientBodies === true }) : undefined;
  for (const uid of uids) {
    const record = needsRecord ? lookupUid(state, uid) : undefined;
    if (needsRecord ? record === undefined : state.records.indexOfUid(uid) < 0) continue;
    const info = needsInfo ? await backend.messageInfo(state, uid) : undefined;
    const body = !needsBody ? undefined : readBody !== undefined ? readBody(uid) : await backend.readMessage(state, uid);
    const out: Partial<FetchedMessage> = { uid };
    for (let i = 0; i < order.length; i++) {
      const field = order[i];
      switch (field) {
        case "uid": break;
        case "seq": out.seq = record!.seq; break;
        case "guid": out.guid = info!.guid; break;
        case "flags": out.flags = [...flagNames(record!.flags), ...record!.keywords]; break;
        case "modseq": out.modseq = record!.modseq; break;
        case "physicalSize": out.physicalSize = info!.physicalSize; break;
        case "virtualSize": out.virtualSize = virtualSizeOf(body!); break;
        case "receivedTime": out.receivedTime = info!.receivedTime; break;
        case "savedTime": out.savedTime = info!.savedTime; break;
        case "body": out.body = body!; break;
        default: assertNever(field);
      }
    }
    yield out as Pick<FetchedMessage, F | "uid">;
  }
}
