import type { LogRecordBody, ModseqUpdate } from "../types.js";
import { requireMultiple, type RecordCodec } from "./context.js";

type ModseqUpdateBody = Extract<LogRecordBody, { type: "modseq-update" }>;

/** MODSEQ_UPDATE (0x8000): struct mail_transaction_modseq_update {uid, modseq_low32, modseq_high32}[]. */
export const modseqUpdateCodec: RecordCodec<ModseqUpdateBody> = {
  decode(src) {
    const count = requireMultiple(src, 12, "modseq-update");
    const updates: ModseqUpdate[] = new Array(count);
    for (let i = 0, p = src.start; i < count; i++, p += 12) {
      const low = src.view.getUint32(p + 4, true);
      const high = src.view.getUint32(p + 8, true);
      updates[i] = { uid: src.view.getUint32(p, true), modseq: (BigInt(high) << 32n) | BigInt(low) };
    }
    return { type: "modseq-update", updates };
  },
  encode(body, out) {
    for (const u of body.updates) {
      out.u32(u.uid);
      out.u32(Number(u.modseq & 0xffffffffn));
      out.u32(Number(u.modseq >> 32n));
    }
  },
};
