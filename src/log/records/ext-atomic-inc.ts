import type { ExtAtomicInc, LogRecordBody } from "../types.js";
import { writeU32LE } from "../bytes.js";
import { corrupt, requireMultiple, type RecordCodec } from "./context.js";

type ExtAtomicIncBody = Extract<LogRecordBody, { type: "ext-atomic-inc" }>;

/** EXT_ATOMIC_INC (0x1000): struct mail_transaction_ext_atomic_inc {uid u32, diff i32}[]. */
export const extAtomicIncCodec: RecordCodec<ExtAtomicIncBody> = {
  decode(src) {
    const count = requireMultiple(src, 8, "ext-atomic-inc");
    const updates: ExtAtomicInc[] = new Array(count);
    for (let i = 0, p = src.start; i < count; i++, p += 8) {
      const uid = src.view.getUint32(p, true);
      if (uid === 0) throw corrupt(src, "ext-atomic-inc: uid 0", p);
      updates[i] = { uid, diff: src.view.getInt32(p + 4, true) };
    }
    return { type: "ext-atomic-inc", updates };
  },
  encode(body, out) {
    // One reserve for the whole payload (issue #11: an mdbox expunge writes one entry per message).
    const updates = body.updates;
    let at = out.reserve(updates.length * 8);
    const bytes = out.bytes;
    for (let k = 0; k < updates.length; k++, at += 8) {
      const u = updates[k];
      writeU32LE(bytes, at, u.uid);
      // Two's complement, as DataView.setInt32 wrote it.
      writeU32LE(bytes, at + 4, u.diff | 0);
    }
  },
};
