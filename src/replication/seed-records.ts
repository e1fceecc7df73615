/**
 * The log records that say what a seed (ShippedSeed) says, shared by the
 * replica that applies one to its store (apply.ts) and the change stream
 * that folds one into a state (seeded-state.ts).
 */
import { EXT_ID_BY_NAME, EXT_INTRO_FLAG_NO_SHRINK, type LogRecord, type UidRange } from "../log/types.js";
import { MODSEQ_EXT_NAME, MODSEQ_HDR_SIZE } from "../projections/apply-modseq.js";

/**
 * Starts keeping a modseq per message, as Dovecot's mail_index_modseq_enable
 * does (the records doveadm writes at its first `fetch modseq`): EXT_INTRO
 * `modseq` (8-byte records, a 16-byte header), then the header's
 * highest_modseq set to `logModseq`, which the messages already there take
 * as theirs.
 */
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

/**
 * Registers keywords `names` in this order. A keyword record registers its
 * name whatever it does (Dovecot's keyword sync adds the name first): a
 * remove from `ranges`, UIDs not there yet, changes no message.
 */
export function keywordRegistrationRecords(names: readonly string[], ranges: UidRange[]): LogRecord[] {
  return names.map((name): LogRecord => ({ type: "keyword-update", external: false, sync: false, modifyType: "remove", name, ranges }));
}
