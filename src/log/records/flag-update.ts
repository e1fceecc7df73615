import type { FlagUpdate, LogRecordBody } from "../types.js";
import { assertUidRanges, corrupt, isValidUidRange, requireMultiple, type PayloadSource, type RecordCodec } from "./context.js";

export type FlagUpdateBody = Extract<LogRecordBody, { type: "flag-update" }>;

/**
 * FLAG_UPDATE (0x4): struct mail_transaction_flag_update
 * {uid1 u32, uid2 u32, add_flags u8, remove_flags u8, modseq_inc_flag u8, pad u8}[].
 */
export const flagUpdateCodec: RecordCodec<FlagUpdateBody> = {
  decode(src) {
    // Sized up front, as a fresh decode always was (a bad size throws inside).
    return decodeFlagUpdateInto(src, { type: "flag-update", updates: new Array(Math.max(0, ((src.end - src.start) / 12) | 0)) });
  },
  encode(body, out) {
    assertUidRanges(body.updates, "flag-update");
    for (const u of body.updates) {
      out.u32(u.uid1);
      out.u32(u.uid2);
      out.u8(u.addFlags);
      out.u8(u.removeFlags);
      out.u8(u.modseqIncFlag);
      out.u8(0);
    }
  },
};

/**
 * Decodes a FLAG_UPDATE payload into `target`, reusing the update objects it
 * holds (a reusing scan decodes every flag update into the same one).
 * Throws LogCorruptedError for a payload Dovecot would reject. Returns `target`.
 */
export function decodeFlagUpdateInto(src: PayloadSource, target: FlagUpdateBody): FlagUpdateBody {
  const count = requireMultiple(src, 12, "flag-update");
  const updates = target.updates;
  let prev = 0;
  for (let i = 0, p = src.start; i < count; i++, p += 12) {
    const uid1 = src.view.getUint32(p, true);
    const uid2 = src.view.getUint32(p + 4, true);
    if (!isValidUidRange(uid1, uid2, prev)) {
      throw corrupt(src, `flag-update: invalid UID range ${uid1}..${uid2}`, p);
    }
    prev = uid2;
    const u = updates[i];
    if (u === undefined) {
      updates[i] = { uid1, uid2, addFlags: src.bytes[p + 8], removeFlags: src.bytes[p + 9], modseqIncFlag: src.bytes[p + 10] };
    } else {
      u.uid1 = uid1;
      u.uid2 = uid2;
      u.addFlags = src.bytes[p + 8];
      u.removeFlags = src.bytes[p + 9];
      u.modseqIncFlag = src.bytes[p + 10];
    }
  }
  if (updates.length !== count) updates.length = count;
  return target;
}

/** True when the update touches no IMAP-visible flag and forces no modseq bump. */
export function isInternalFlagUpdate(u: FlagUpdate): boolean {
  return ((u.addFlags | u.removeFlags) & 0x1f) === 0 && u.modseqIncFlag === 0;
}
