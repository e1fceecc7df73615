/**
 * Finding one message of an mbox for reading, under the read lock: at the
 * from offset the index keeps, checked by X-UID or header MD5 (as Dovecot's
 * mbox_file_seek does when its offsets may be dirty); when the file moved
 * under the index, by scanning it and matching it to the index the way a
 * sync would, without writing anything (a refresh() then logs the changes).
 */
import { MailstoreError } from "../../shared/errors.js";
import type { IndexMapState } from "../../projections/state.js";
import { isSameMessage, MessageCursor, scanFile } from "./file-messages.js";
import { mboxRecordReader } from "./index-ext.js";
import { indexedMessages } from "./index-view.js";
import type { MboxMessage } from "./scan.js";
import { FileSource, type ByteSource } from "./source.js";
import { planSync } from "./sync-plan.js";

/** Read window for one message: most messages are a few KB, and a bigger window is copied for nothing. */
export const LOCATE_WINDOW_BYTES = 16 * 1024;

/**
 * @param cursor reads `fd`: a caller reading one message after another
 *   passes the same one while the file cannot change (its source's window
 *   then usually holds the next message already, and its scan goes on from
 *   the boundary the last message ended at); else a new one.
 * @returns the message `uid` of the file open as `fd`, the source to read
 *   it from (valid until the cursor's source reads elsewhere), and its header MD5 when
 *   finding it took one (it matched the index's, so its GUID needs no other).
 */
export function locateMessage(fd: number, path: string, state: IndexMapState, uid: number, cursor?: MessageCursor): { src: ByteSource; msg: MboxMessage; headerMd5?: Uint8Array } {
  const index = state.records.indexOfUid(uid);
  if (index < 0) throw new MailstoreError("NOT_FOUND", `no message with UID ${uid}`, { path });
  const rows = mboxRecordReader(state);
  const offset = rows.fromOffset(index + 1);
  const md5 = rows.headerMd5(index + 1);
  const at = cursor ?? new MessageCursor(new FileSource(fd, LOCATE_WINDOW_BYTES), path);
  const src = at.src;
  const msg = offset === undefined ? undefined : at.at(offset);
  // Without its X-UID, the message was recognised by the header MD5 the index keeps: that is its MD5
  // (copied: the caller keeps it, and the index rows are not ours to keep).
  if (msg && isSameMessage(src, msg, { uid, md5 })) return msg.rawUid !== uid && md5 ? { src, msg, headerMd5: md5.slice() } : { src, msg };
  const scanned = scanFile(fd, path);
  const plan = planSync({
    state,
    indexed: indexedMessages(state),
    pending: { flags: new Set(), expunges: new Set(), any: false },
    expunge: new Set(),
    src: scanned.src,
    messages: scanned.messages,
  });
  // Failing Dovecot's rules (which a sync will apply), a message still carrying this X-UID is the one.
  const found = plan.messages.find((m) => m.uid === uid && m.indexed) ?? plan.messages.find((m) => m.uid !== 0 && m.msg.rawUid === uid);
  if (!found) throw new MailstoreError("NOT_FOUND", `message UID ${uid} is no longer in the mbox`, { path });
  return { src: scanned.src, msg: found.msg };
}
