import { bytesToString, pad4, stringToBytes } from "../bytes.js";
import type { ExtIntro, LogRecordBody } from "../types.js";
import { corrupt, type RecordCodec } from "./context.js";

type ExtIntroBody = Extract<LogRecordBody, { type: "ext-intro" }>;

const INTRO_FIXED_BYTES = 20;

/**
 * EXT_INTRO (0x40): struct mail_transaction_ext_intro {ext_id u32, reset_id
 * u32, hdr_size u32, record_size u16, record_align u16, flags u16, name_size
 * u16} + name + pad4, repeated (Dovecot writes one per record).
 */
export const extIntroCodec: RecordCodec<ExtIntroBody> = {
  decode(src) {
    const intros: ExtIntro[] = [];
    let p = src.start;
    while (p < src.end) {
      if (p + INTRO_FIXED_BYTES > src.end) throw corrupt(src, "ext-intro: truncated entry", p);
      const nameSize = src.view.getUint16(p + 18, true);
      const nameStart = p + INTRO_FIXED_BYTES;
      if (nameSize > src.end - nameStart) throw corrupt(src, `ext-intro: name size ${nameSize} overflows the record`, p);
      intros.push({
        extId: src.view.getUint32(p, true),
        resetId: src.view.getUint32(p + 4, true),
        hdrSize: src.view.getUint32(p + 8, true),
        recordSize: src.view.getUint16(p + 12, true),
        recordAlign: src.view.getUint16(p + 14, true),
        flags: src.view.getUint16(p + 16, true),
        name: bytesToString(src.bytes, nameStart, nameStart + nameSize),
      });
      p = src.start + pad4(nameStart + nameSize - src.start);
    }
    return { type: "ext-intro", intros };
  },
  encode(body, out) {
    const from = out.length;
    for (const intro of body.intros) {
      const name = stringToBytes(intro.name);
      out.u32(intro.extId);
      out.u32(intro.resetId);
      out.u32(intro.hdrSize);
      out.u16(intro.recordSize);
      out.u16(intro.recordAlign);
      out.u16(intro.flags);
      out.u16(name.length);
      out.raw(name);
      out.padFrom(from);
    }
  },
};
