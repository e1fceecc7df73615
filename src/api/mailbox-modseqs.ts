/**
 * Mailbox.enableModseqs: Dovecot's mail_index_modseq_enable, which a
 * CONDSTORE or QRESYNC client (or doveadm's first `fetch modseq`) triggers:
 * from then on the index keeps a modseq per message instead of reading
 * every message's as the mailbox's highest.
 *
 * What Dovecot logs (doveadm 2.3.19 `fetch modseq` on sdbox, mdbox and
 * Maildir, read back with readLog): one transaction, not EXTERNAL, of an
 * EXT_INTRO `modseq` by name (NO_SHRINK, a 16-byte header, 8-byte records
 * aligned to 8) and an EXT_HDR setting the header's highest_modseq to the
 * log's counter, which the messages already there take as theirs.
 */
import { EXT_ID_BY_NAME, EXT_INTRO_FLAG_NO_SHRINK, type LogRecord, type LogTransaction } from "../log/types.js";
import { MODSEQ_EXT_NAME, MODSEQ_HDR_SIZE, modseqFieldOffset } from "../projections/apply-modseq.js";
import type { CommitResult, Mailbox } from "./mailbox.js";

/** The records of Dovecot's modseq enable at log counter `logModseq` (see the module comment). */
export function modseqEnableRecords(logModseq: bigint): LogRecord[] {
  const hdr = new Uint8Array(MODSEQ_HDR_SIZE);
  new DataView(hdr.buffer).setBigUint64(0, logModseq, true);
  return [
    {
      type: "ext-intro", external: false, sync: false,
      intros: [{ extId: EXT_ID_BY_NAME, resetId: 0, hdrSize: MODSEQ_HDR_SIZE, recordSize: 8, recordAlign: 8, flags: EXT_INTRO_FLAG_NO_SHRINK, name: MODSEQ_EXT_NAME }],
    },
    { type: "ext-hdr", external: false, sync: false, patches: [{ offset: 0, data: hdr }] },
  ];
}

/** Whether `record` introduces the modseq extension by name (the first enable, as modseqEnableRecords writes it; later intros name its id). */
export function isModseqIntro(record: LogRecord): boolean {
  return record.type === "ext-intro" && record.intros.some((i) => i.extId === EXT_ID_BY_NAME && i.name === MODSEQ_EXT_NAME);
}

/** Whether `tx` enables modseqs (isModseqIntro). */
export function introducesModseqs(tx: LogTransaction): boolean {
  return tx.entries.some(({ record }) => isModseqIntro(record));
}

/**
 * Starts keeping a modseq per message at the log's counter, in a
 * transaction of its own; nothing when the mailbox keeps them already.
 * @returns the log range written, or undefined when nothing changed.
 */
export async function enableModseqs(mailbox: Mailbox): Promise<CommitResult | undefined> {
  // Kept already (a CONDSTORE client enables at every SELECT): no lock, no commit hooks. Checked again under the lock.
  if (modseqFieldOffset(mailbox.state.extensions) >= 0) return undefined;
  return mailbox.commitWith(async (state) => (modseqFieldOffset(state.extensions) >= 0 ? [] : [modseqEnableRecords(state.logModseq)]), { changesMessages: false });
}
