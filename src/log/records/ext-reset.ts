import type { LogRecordBody } from "../types.js";
import { corrupt, type RecordCodec } from "./context.js";

type ExtReset = Extract<LogRecordBody, { type: "ext-reset" }>;

/**
 * EXT_RESET (0x80): struct mail_transaction_ext_reset {new_reset_id u32,
 * preserve_data u8, pad[3]}. Very old writers wrote only the u32.
 */
export const extResetCodec: RecordCodec<ExtReset> = {
  decode(src) {
    const length = src.end - src.start;
    if (length === 4) {
      return { type: "ext-reset", newResetId: src.view.getUint32(src.start, true), preserveData: 0, legacyShort: true };
    }
    if (length !== 8) throw corrupt(src, `ext-reset: payload of ${length} bytes`);
    return {
      type: "ext-reset",
      newResetId: src.view.getUint32(src.start, true),
      preserveData: src.bytes[src.start + 4],
    };
  },
  encode(body, out) {
    out.u32(body.newResetId);
    if (body.legacyShort) return;
    out.u8(body.preserveData);
    out.u8(0);
    out.u16(0);
  },
};
