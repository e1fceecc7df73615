import type { ExtAtomicInc, LogRecordBody } from "../types.js";
import { corrupt, isUid, requireMultiple, type RecordCodec } from "./context.js";

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
  decodesToItself(body) {
    for (const u of body.updates) if (!isUid(u.uid) || (u.diff | 0) !== u.diff) return false;
    return true;
  },
  encode(body, out) {
    // One reserve for the whole payload, one store per field (issue #11: an mdbox expunge
    // writes one entry per message). A u32 store of the diff is its two's complement.
    const updates = body.updates;
    const at = out.reserve(updates.length * 8);
    const words = out.words(at);
    for (let k = 0, w = at >>> 2; k < updates.length; k++, w += 2) {
      const u = updates[k];
      words[w] = u.uid;
      words[w + 1] = u.diff;
    }
  },
};
