import type { ExpungeGuid, LogRecordBody } from "../types.js";
import { corrupt, isUid, requireMultiple, type RecordCodec } from "./context.js";

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
  decodesToItself(body) {
    // Indexed, not for-of: asked once per appended record, in code that mostly runs unoptimized,
    // where for-of costs an iterator step per entry (a purge's map expunges 10,000 at 20k).
    const expunges = body.expunges;
    for (let i = 0; i < expunges.length; i++) {
      const e = expunges[i];
      // The decoder refuses uid 0 and gives each GUID as a 16-byte Uint8Array.
      if (!isUid(e.uid) || e.guid.length !== 16 || e.guid.constructor !== Uint8Array) return false;
    }
    return true;
  },
  encode(body, out) {
    // One reserve for the whole payload, then byte stores in place: a mass expunge encodes
    // one entry per message, and a reserve and DataView write per field cost more (issue #11).
    const expunges = body.expunges;
    let at = out.reserve(expunges.length * 20);
    const bytes = out.bytes;
    const words = out.words(at);
    for (let k = 0; k < expunges.length; k++, at += 20) {
      const e = expunges[k];
      words[at >>> 2] = e.uid;
      const guid = e.guid;
      // set() of a whole 16-byte GUID costs less than 16 stores in code that runs once per commit.
      if (guid.length === 16) {
        bytes.set(guid, at + 4);
        continue;
      }
      // Zero-padded (or cut) to 16 bytes.
      const n = Math.min(guid.length, 16);
      for (let i = 0; i < n; i++) bytes[at + 4 + i] = guid[i];
      for (let i = n; i < 16; i++) bytes[at + 4 + i] = 0;
    }
  },
};
