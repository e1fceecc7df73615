import type { ExpungeGuid, LogRecordBody } from "../types.js";
import { corrupt, requireMultiple, type RecordCodec } from "./context.js";

type ExpungeGuidBody = Extract<LogRecordBody, { type: "expunge-guid" }>;

/** EXPUNGE_GUID (0xED90): struct mail_transaction_expunge_guid {uid u32, guid_128[16]}[]. */
export const expungeGuidCodec: RecordCodec<ExpungeGuidBody> = {
  decode(src) {
    const count = requireMultiple(src, 20, "expunge-guid");
    const expunges: ExpungeGuid[] = new Array(count);
    // One copy of the payload, each GUID a view into it: a copy per GUID was an ArrayBuffer
    // per expunged message, and most of a mass expunge's garbage (issue #11).
    const payload = src.bytes.slice(src.start, src.end);
    for (let i = 0, p = src.start; i < count; i++, p += 20) {
      const uid = src.view.getUint32(p, true);
      if (uid === 0) throw corrupt(src, "expunge-guid: uid 0", p);
      const at = p - src.start + 4;
      expunges[i] = { uid, guid: payload.subarray(at, at + 16) };
    }
    return { type: "expunge-guid", expunges };
  },
  encode(body, out) {
    for (const e of body.expunges) {
      out.u32(e.uid);
      // In place, zero-padded, byte by byte: a mass expunge encodes one per message, and a
      // subarray plus set() per GUID cost more than the 16 stores (issue #11).
      const guid = e.guid;
      const n = Math.min(guid.length, 16);
      const at = out.reserve(16);
      const bytes = out.bytes;
      for (let i = 0; i < n; i++) bytes[at + i] = guid[i];
      for (let i = n; i < 16; i++) bytes[at + i] = 0;
    }
  },
};
