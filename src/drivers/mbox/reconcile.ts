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
 * The rules above, one file message at a time (in file order), so that a
 * sync can plan and record each message as the scan finds it instead of
 * holding all of them (a first sync of a 100k-message mbox).
 */
export class MboxUidReconciler {
  private nextUid: number;
  private prevUid = 0;
  /** Next index message not yet matched or passed over. */
  private idx = 0;
  private i = 0;
  private readonly vanished: number[] = [];

  constructor(
    private readonly indexed: readonly IndexedMessage[],
    private readonly indexNextUid: number,
  ) {
    this.nextUid = indexNextUid;
  }

  /** @param md5Of the message's header MD5 (asked only when needed). */
  next(m: FileMessageUidInfo, md5Of: () => Uint8Array): ReconciledMessage {
    const { indexed } = this;
    const first = this.i++ === 0;
    if (first && m.imapBaseUidLast !== undefined && this.nextUid - 1 <= m.imapBaseUidLast) this.nextUid = m.imapBaseUidLast + 1;
    if (m.pseudo) return { uid: 0, indexPos: -1, needsUidHeader: false };
    let uid = 0;
    const raw = m.rawUid;
    if (raw !== undefined && !(first && m.imapBaseUidLast === undefined)) {
      if (raw === this.nextUid) {
        this.nextUid++;
        uid = raw;
      } else if (raw < this.nextUid && raw > this.prevUid) uid = raw;
    }
    // The header is right only when its X-UID was taken as is (and, in the
    // first message, X-IMAPbase is there).
    let headerOk = uid !== 0;
    let pos = -1;
    if (uid !== 0) {
      while (this.idx < indexed.length && indexed[this.idx].uid < uid) this.vanished.push(this.idx++);
      if (this.idx < indexed.length && indexed[this.idx].uid === uid) pos = this.idx++;
      else if (uid < this.indexNextUid) uid = 0; // reappeared after being expunged
    }
    if (uid === 0 && this.idx < indexed.length) {
      const md5 = md5Of();
      let found = this.idx;
      while (found < indexed.length && !sameBytes(indexed[found].md5, md5)) found++;
      if (found < indexed.length) {
        while (this.idx < found) this.vanished.push(this.idx++);
        pos = this.idx++;
        uid = indexed[pos].uid;
      }
      headerOk = false;
    }
    if (uid === 0) {
      while (this.idx < indexed.length) this.vanished.push(this.idx++);
      uid = this.nextUid++;
      headerOk = false;
    }
    this.prevUid = uid;
    return { uid, indexPos: pos, needsUidHeader: !headerOk };
  }

  /** @returns the index positions no file message matched, and next_uid, once every file message was given. */
  finish(): Omit<ReconcileResult, "messages"> {
    while (this.idx < this.indexed.length) this.vanished.push(this.idx++);
    return { vanished: this.vanished, nextUid: this.nextUid };
  }
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
  const reconciler = new MboxUidReconciler(indexed, indexNextUid);
  const out = messages.map((m, i) => reconciler.next(m, () => md5Of(i)));
  return { messages: out, ...reconciler.finish() };
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (a === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
