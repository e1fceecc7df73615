/**
 * Mailbox.update for mbox: the file keeps UIDVALIDITY and the last UID
 * given out in its first message's X-IMAPbase (or the pseudo message's
 * X-IMAP), so that they survive the loss of the index, and Dovecot resets
 * an index whose UIDVALIDITY the file contradicts. Observed with doveadm
 * 2.3.19 `mailbox update --uid-validity 777 --min-next-uid 9`: a file
 * without real messages, even an empty one, becomes the pseudo message
 * `X-IMAP: 777 0000000008`. A file with messages gets its last-UID field
 * raised in place.
 */
import type { LogRecord } from "../../log/types.js";
import { InvalidArgumentError } from "../../shared/errors.js";
import type { IndexMapState } from "../../projections/state.js";
import type { MailboxHeaderUpdate } from "../driver.js";
import { scanFile } from "./file-messages.js";
import { mboxHeaderRecords } from "./index-ext.js";
import type { WriteHold } from "./mbox-file.js";
import { formatPseudoMessage } from "./pseudo.js";
import { raiseUidLast } from "./save.js";
import { fileMatchesIndex, fileSyncStamp, stampedHeader } from "./sync.js";

/**
 * Writes the values the index will have into the file, under the write hold.
 * @returns the `mbox` header records for the file as it is now, when the
 *   index had seen the file as it was (else the next sync reads it).
 * @throws InvalidArgumentError when UIDVALIDITY is to change but the file
 *   holds messages the index has not seen yet (an MDA delivered).
 */
export function updateMboxFile(hold: WriteHold, state: IndexMapState, update: MailboxHeaderUpdate): LogRecord[] {
  const inSync = !hold.recovered && fileMatchesIndex(state, fileSyncStamp(hold.fd));
  const { messages } = scanFile(hold.fd, hold.file.path);
  const uidValidity = update.uidValidity ?? state.header.uidValidity;
  const nextUid = Math.max(state.header.nextUid, update.nextUid ?? 0);
  if (messages.every((m) => m.pseudo)) {
    const pseudo = formatPseudoMessage(uidValidity, nextUid - 1, state.keywords);
    hold.write(pseudo, 0, pseudo.length);
  } else {
    if (uidValidity !== state.header.uidValidity) {
      throw new InvalidArgumentError("UIDVALIDITY can change only while the mailbox has no messages, and the mbox file holds some the index has not seen yet", { path: hold.file.path });
    }
    raiseUidLast(hold, nextUid - 1);
  }
  hold.syncData();
  return inSync ? mboxHeaderRecords(stampedHeader(state, hold.fd)) : [];
}
