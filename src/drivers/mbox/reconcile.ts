/**
 * Matching the messages of an mbox file to the index, with the UID rules of
 * Dovecot 2.3's mbox sync (mbox-sync-parse.c parse_x_uid/parse_x_imap_base,
 * mbox-sync.c mbox_sync_loop), so that the engine and Dovecot give every
 * message the same UID whoever looks first:
 *
 * - The next UID starts at the index's next_uid, raised to X-IMAPbase's
 *   last UID + 1 (first message only).
 * - An X-UID is usable when it equals the next UID (which then advances: a
 *   message saved but never logged is taken back), or is below it and above
 *   the previous message's UID. A larger one is refused (incoming mail can
 *   carry forged X-UIDs), as is any X-UID in a first message without
 *   X-IMAPbase.
 * - A usable UID the index does not know but once gave out (below its
 *   next_uid) is an expunged message that reappeared: refused too.
 * - Index messages passed over are gone from the file: expunged.
 * - A message without a usable UID is looked up by header MD5 among the
 *   index messages still ahead (those passed over are expunged); failing
 *   that, it and everything after it get new UIDs, since UIDs must grow
 *   through the file.
 */
import type { IndexedMessage } from "./index-view.js";

/** What the reconciler needs of one file message. */
export interface FileMessageUidInfo {
  /** First X-UID that reads (scan.ts `rawUid`). */
  readonly rawUid?: number;
  readonly pseudo: boolean;
  /** X-IMAPbase / X-IMAP of the first message. */
  readonly imapBaseUidLast?: number;
}

/** The outcome for one file message. */
export interface ReconciledMessage {
  /** Its UID (0 for the pseudo message). */
  readonly uid: number;
  /** Index position (into `indexed`) it matched, or -1 for a message new to the index. */
  readonly indexPos: number;
  /** The file's X-UID is missing or not this UID: the header needs rewriting. */
  readonly needsUidHeader: boolean;
}

export interface ReconcileResult {
  readonly messages: readonly ReconciledMessage[];
  /** Index positions no file message matched (gone: expunged). */
  readonly vanished: readonly number[];
  /** next_uid after the file. */
  readonly nextUid: number;
}

/**
 * @param md5Of the header MD5 of file message `i` (computed only when needed).
 */
export function reconcileMbox(
  messages: readonly FileMessageUidInfo[],
  indexed: readonly IndexedMessage[],
  indexNextUid: number,
  md5Of: (i: number) => Uint8Array,
): ReconcileResult {
  const out: ReconciledMessage[] = [];
  const vanished: number[] = [];
  let nextUid = indexNextUid;
  let prevUid = 0;
  let idx = 0; // next index message not yet matched or passed over

  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (i === 0 && m.imapBaseUidLast !== undefined && nextUid - 1 <= m.imapBaseUidLast) nextUid = m.imapBaseUidLast + 1;
    if (m.pseudo) {
      out.push({ uid: 0, indexPos: -1, needsUidHeader: false });
      continue;
    }
    let uid = 0;
    const raw = m.rawUid;
    if (raw !== undefined && !(i === 0 && m.imapBaseUidLast === undefined)) {
      if (raw === nextUid) {
        nextUid++;
        uid = raw;
      } else if (raw < nextUid && raw > prevUid) uid = raw;
    }
    // The header is right only when its X-UID was taken as is (and, in the
    // first message, X-IMAPbase is there).
    let headerOk = uid !== 0;
    let pos = -1;
    if (uid !== 0) {
      while (idx < indexed.length && indexed[idx].uid < uid) vanished.push(idx++);
      if (idx < indexed.length && indexed[idx].uid === uid) pos = idx++;
      else if (uid < indexNextUid) uid = 0; // reappeared after being expunged
    }
    if (uid === 0 && idx < indexed.length) {
      const md5 = md5Of(i);
      let found = idx;
      while (found < indexed.length && !sameBytes(indexed[found].md5, md5)) found++;
      if (found < indexed.length) {
        while (idx < found) vanished.push(idx++);
        pos = idx++;
        uid = indexed[pos].uid;
      }
      headerOk = false;
    }
    if (uid === 0) {
      while (idx < indexed.length) vanished.push(idx++);
      uid = nextUid++;
      headerOk = false;
    }
    prevUid = uid;
    out.push({ uid, indexPos: pos, needsUidHeader: !headerOk });
  }
  while (idx < indexed.length) vanished.push(idx++);
  return { messages: out, vanished, nextUid };
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (a === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
