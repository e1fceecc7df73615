/**
 * Saving messages into an mbox, under the write hold and before the log
 * records them (a crash in between leaves a message whose X-UID equals the
 * index's next UID: the next sync takes it back with that UID, reconcile.ts).
 *
 * Normally the messages are appended at the end in Dovecot's layout
 * (write.ts): a separator LF is added first when the file does not end in
 * one; the first message of an empty file carries X-IMAPbase. Before the
 * messages are written (here and below), as Dovecot's sync does, the
 * 10-digit last-UID field of the first message's X-IMAPbase (or the pseudo
 * message's X-IMAP) is raised in place and keywords new to the mailbox are
 * added to its list, so that UIDs and keywords stay safe should the index
 * be lost (prepareImapBase).
 *
 * The UIDs are fixed by the caller (the index's next UIDs), and UIDs must
 * grow through the file. So when the file changed behind the index and
 * holds messages the index does not know yet (an MDA delivered), ours are
 * written BEFORE the first of them (in-place.ts), and the next sync gives
 * those the UIDs after ours. In that case the `mbox` header is left as it
 * was, so that the next reader scans the file.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import type { LogRecord } from "../../log/types.js";
import { MailCorruptedError } from "../../shared/errors.js";
import type { IndexMapState } from "../../projections/state.js";
import type { NewMessage } from "../driver.js";
import { readRange, scanFile } from "./file-messages.js";
import { mboxHeaderMd5 } from "./header-md5.js";
import { fromOffsetRecords, headerMd5Records, mboxHeaderRecords } from "./index-ext.js";
import type { IndexedMessage } from "./index-view.js";
import { indexedMessages } from "./index-view.js";
import type { WriteHold } from "./mbox-file.js";
import { rewriteInPlace } from "./in-place.js";
import { bytesPiece, verbatimPiece } from "./pieces.js";
import { scanMbox } from "./scan.js";
import { FileSource } from "./source.js";
import { fileMatchesIndex, fileSyncStamp, listKeywordsInImapBase, stampedHeader } from "./sync.js";
import { planSync, type SyncPlan } from "./sync-plan.js";
import { formatMboxMessage } from "./write.js";

/** What a save did, for the records and for undoing it. */
export interface SaveOutcome {
  readonly records: LogRecord[];
  /** The saved messages as the index will know them (for an expunge in the same transaction). */
  readonly saved: IndexedMessage[];
  /** Undoes the save while the hold is still held (best effort). */
  readonly undo: () => void;
}

/** The envelope sender Dovecot writes for a save without one: user@host. */
function defaultSender(): string {
  let user = process.env.USER;
  if (!user) {
    try {
      user = os.userInfo().username;
    } catch (err) {
      // A uid with no passwd entry (a container, a deleted user): os.userInfo's documented SystemError.
      if ((err as NodeJS.ErrnoException).code !== "ERR_SYSTEM_ERROR") throw err;
      user = "MAILER-DAEMON";
    }
  }
  return `${user}@${os.hostname()}`;
}

/** The mailbox's keywords, then those `messages` bring, in that order (X-IMAPbase's list). */
function keywordsWith(state: IndexMapState, messages: readonly NewMessage[]): string[] {
  const keywords = [...state.keywords];
  for (const m of messages) for (const k of m.keywords) if (!keywords.includes(k)) keywords.push(k);
  return keywords;
}

function formatAll(state: IndexMapState, messages: readonly NewMessage[], uids: readonly number[], atFileStart: boolean): Buffer[] {
  const sender = defaultSender();
  const keywords = keywordsWith(state, messages);
  return messages.map((m, i) =>
    formatMboxMessage({
      message: m.body,
      uid: uids[i],
      flags: m.flags,
      keywords: m.keywords,
      sender,
      receivedTime: m.receivedTime ?? Math.floor(Date.now() / 1000),
      ...(atFileStart && i === 0 ? { imapBase: { uidValidity: state.header.uidValidity, uidLast: uids[uids.length - 1], keywords } } : {}),
    }),
  );
}

/** Saves `messages` as `uids` (ascending, gaps allowed; see the module comment). */
export async function saveToMbox(hold: WriteHold, state: IndexMapState, messages: readonly NewMessage[], uids: readonly number[]): Promise<SaveOutcome> {
  const saved: IndexedMessage[] = messages.map((m, i) => ({ uid: uids[i], flags: m.flags, keywords: m.keywords }));
  const lastUid = uids[uids.length - 1];
  const inSync = !hold.recovered && fileMatchesIndex(state, fileSyncStamp(hold.fd));
  if (!inSync) {
    const plan = planFile(hold, state);
    const insertAt = plan.messages.findIndex((m) => m.uid !== 0 && !m.indexed);
    if (insertAt >= 0) return insertBefore(hold, state, plan, messages, uids, insertAt, saved);
  }
  const size = fs.fstatSync(hold.fd).size;
  const needLf = size > 0 && readRange(hold.fd, size - 1, 1)[0] !== 0x0a;
  const start = size + (needLf ? 1 : 0);
  const parts = formatAll(state, messages, uids, start === 0);
  const offsets: Array<{ uid: number; offset: number }> = [];
  let pos = start;
  parts.forEach((p, i) => {
    offsets.push({ uid: uids[i], offset: pos === 0 ? 0 : pos - 1 });
    pos += p.length;
  });
  const bytes = Buffer.concat([needLf ? Buffer.from("\n") : Buffer.alloc(0), ...parts]);
  const oldLast = start > 0 ? prepareImapBase(hold, state, messages, lastUid) : undefined;
  hold.write(bytes, size);
  hold.syncData();
  const records = [...fromOffsetRecords(offsets), ...headerMd5Records(parts.map((p, i) => ({ uid: uids[i], md5: formattedHeaderMd5(p) })))];
  if (inSync) records.unshift(...mboxHeaderRecords(stampedHeader(state, hold.fd)));
  return {
    records,
    saved: saved.map((s, i) => ({ ...s, fromOffset: offsets[i].offset })),
    undo: () => {
      fs.ftruncateSync(hold.fd, size);
      if (oldLast !== undefined) writeUidLast(hold, oldLast.offset, oldLast.value);
      hold.syncData();
    },
  };
}

/**
 * Readies the first message's X-IMAPbase (or X-IMAP) for `messages`, which
 * go after it: raises its last UID to `lastUid`, and lists the keywords new
 * to the mailbox (a reader without the index ignores an X-Keywords naming a
 * keyword that list lacks). Done before any message is written: a kill in
 * between then leaves at worst an unused UID or keyword name, never saved
 * text whose keywords such a reader drops. (Left as is if the save is
 * undone: an unused name is harmless.)
 * @returns the old last UID and where it is, to undo; undefined when not changed.
 */
function prepareImapBase(hold: WriteHold, state: IndexMapState, messages: readonly NewMessage[], lastUid: number): { offset: number; value: number } | undefined {
  const oldLast = raiseUidLast(hold, lastUid);
  if (messages.some((m) => m.keywords.some((k) => !state.keywords.includes(k)))) {
    listKeywordsInImapBase(hold, new FileSource(hold.fd), lastUid, state.header.uidValidity, keywordsWith(state, messages));
  }
  return oldLast;
}

/** The file's messages matched to the index, nothing pending (read only). */
function planFile(hold: WriteHold, state: IndexMapState): SyncPlan {
  const { src, messages } = scanFile(hold.fd, hold.file.path);
  return planSync({ state, indexed: indexedMessages(state), pending: { flags: new Set(), expunges: new Set(), any: false }, expunge: new Set(), src, messages });
}

/**
 * Writes the new messages before the first message the index does not
 * know, moving that one and the rest on (in-place.ts).
 */
function insertBefore(
  hold: WriteHold,
  state: IndexMapState,
  plan: SyncPlan,
  messages: readonly NewMessage[],
  uids: readonly number[],
  insertAt: number,
  saved: IndexedMessage[],
): SaveOutcome {
  const parts = formatAll(state, messages, uids, insertAt === 0);
  // At the file's start the first new message carries X-IMAPbase itself, written with it.
  if (insertAt > 0) prepareImapBase(hold, state, messages, uids[uids.length - 1]);
  const msgs = plan.messages;
  const src = new FileSource(hold.fd);
  const units = msgs.map((m, i) => ({ start: m.msg.fromLineOffset, end: i + 1 < msgs.length ? msgs[i + 1].msg.fromLineOffset : src.size }));
  const result = rewriteInPlace(hold, {
    units,
    firstChange: insertAt,
    // Everything after the new messages moves on byte for byte (their UIDs come at the next sync).
    pieceFor: (i, unit) => verbatimPiece(unit, msgs[i].msg, msgs[i].indexed ? msgs[i].uid : undefined),
    insertsBefore: (i) => (i === insertAt ? parts.map((data, j) => bytesPiece(data, uids[j])) : []),
  });
  const moved = [...result.offsets].filter(([uid, offset]) => uid >= uids[0] || msgs.find((m) => m.uid === uid)?.indexed?.fromOffset !== offset);
  return {
    records: [
      ...fromOffsetRecords(moved.map(([uid, offset]) => ({ uid, offset }))),
      ...headerMd5Records(parts.map((p, j) => ({ uid: uids[j], md5: formattedHeaderMd5(p) }))),
    ],
    saved: saved.map((s) => ({ ...s, fromOffset: result.offsets.get(s.uid)! })),
    // The messages stay in the file: the next sync finds them (X-UID = next UID) and keeps them.
    undo: () => undefined,
  };
}

/** The header MD5 a save gives `body` (what messageInfo() shows as its GUID, in hex). */
export function savedHeaderMd5(body: Uint8Array): Uint8Array {
  return formattedHeaderMd5(formatMboxMessage({ message: body, uid: 1, flags: 0, keywords: [], sender: "MAILER-DAEMON", receivedTime: 0 }));
}

/**
 * The header MD5 of a message as formatMboxMessage laid it out. Kept in the
 * index for every saved message (Dovecot keeps it only for messages without
 * X-UID): should another program delete the first message, and X-IMAPbase
 * with it, the others are still recognised instead of renumbered.
 */
function formattedHeaderMd5(formatted: Buffer): Uint8Array {
  const start = formatted.indexOf(0x0a) + 1;
  const end = formatted.indexOf("\n\n", start - 1);
  return mboxHeaderMd5(formatted.subarray(start, end < 0 ? formatted.length : end + 1));
}

const UID_LAST = /^(X-IMAPbase|X-IMAP):[ \t]*\d+[ \t]+(\d{10})(?=[ \t\r\n]|$)/im;

/**
 * Raises the 10-digit last UID of the first message's X-IMAPbase/X-IMAP to
 * `uidLast` in place.
 * @returns the old value and where it is, to undo; undefined when not changed.
 */
export function raiseUidLast(hold: WriteHold, uidLast: number): { offset: number; value: number } | undefined {
  const fd = hold.fd;
  const src = new FileSource(fd);
  let first;
  try {
    first = scanMbox(src).next();
  } catch (err) {
    // A first message that does not parse has no X-IMAPbase to raise; the next sync reports it.
    if (err instanceof MailCorruptedError) return undefined;
    throw err;
  }
  if (first.done || !first.value.imapBase || first.value.imapBase.uidLast >= uidLast) return undefined;
  const msg = first.value;
  const header = readRange(fd, msg.headerOffset, msg.headerEndOffset - msg.headerOffset).toString("latin1");
  const m = UID_LAST.exec(header);
  if (!m || Number(m[2]) !== msg.imapBase!.uidLast) return undefined;
  const offset = msg.headerOffset + m.index + m[0].length - 10;
  writeUidLast(hold, offset, uidLast);
  return { offset, value: msg.imapBase!.uidLast };
}

function writeUidLast(hold: WriteHold, offset: number, value: number): void {
  hold.write(Buffer.from(String(value).padStart(10, "0"), "latin1"), offset);
}
