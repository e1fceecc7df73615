import { pad4 } from "../bytes.js";
import type { ExtRecUpdate, LogRecordBody } from "../types.js";
import { corrupt, requireMultiple, type RecordCodec } from "./context.js";

type ExtRecUpdateBody = Extract<LogRecordBody, { type: "ext-rec" }>;

/**
 * EXT_REC_UPDATE (0x200): {uid u32, data[record_size], pad4}[], where
 * record_size is the one carried by the ext-intro earlier in the transaction:
 * the record cannot be parsed without it.
 */
export const extRecUpdateCodec: RecordCodec<ExtRecUpdateBody> = {
  decode(src) {
    const recordSize = src.extRecordSize;
    if (recordSize === undefined) throw corrupt(src, "ext-rec-update without a preceding ext-intro");
    const entrySize = pad4(4 + recordSize);
    const count = requireMultiple(src, entrySize, "ext-rec");
    const updates: ExtRecUpdate[] = new Array(count);
    for (let i = 0, p = src.start; i < count; i++, p += entrySize) {
      const uid = src.view.getUint32(p, true);
      if (uid === 0) throw corrupt(src, "ext-rec-update: uid 0", p);
      updates[i] = { uid, data: src.bytes.slice(p + 4, p + 4 + recordSize) };
    }
    return { type: "ext-rec", recordSize, updates };
  },
  encode(body, out) {
    const from = out.length;
    for (const u of body.updates) {
      out.u32(u.uid);
      const data = new Uint8Array(body.recordSize);
      data.set(u.data.subarray(0, body.recordSize));
      out.raw(data);
      out.padFrom(from);
    }
  },
};
