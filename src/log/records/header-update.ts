import { pad4 } from "../bytes.js";
import type { HeaderPatch, LogRecordBody } from "../types.js";
import { corrupt, type PayloadSource, type RecordCodec } from "./context.js";

type PatchRecordType = "header-update" | "ext-hdr" | "ext-hdr32";
type PatchBody<T extends PatchRecordType> = Extract<LogRecordBody, { type: T }>;

/**
 * The byte-patch records: HEADER_UPDATE and EXT_HDR_UPDATE (u16 offset, u16
 * size) and EXT_HDR_UPDATE32 (u32, u32), each entry followed by its data and
 * padded to 4 bytes. Dovecot's reader pads after every entry, so that is what
 * this codec writes; Dovecot's writer pads only the record's end, which is the
 * same thing whenever only the last entry has an odd size.
 */
function patchCodec<T extends PatchRecordType>(type: T, fieldBytes: 2 | 4): RecordCodec<PatchBody<T>> {
  const entryHeader = fieldBytes * 2;
  return {
    decode(src: PayloadSource) {
      const patches: HeaderPatch[] = [];
      let p = src.start;
      while (p < src.end) {
        if (p + entryHeader > src.end) throw corrupt(src, `${type}: truncated entry header`, p);
        const offset = fieldBytes === 2 ? src.view.getUint16(p, true) : src.view.getUint32(p, true);
        const size = fieldBytes === 2 ? src.view.getUint16(p + 2, true) : src.view.getUint32(p + 4, true);
        const dataStart = p + entryHeader;
        if (size > src.end - dataStart) throw corrupt(src, `${type}: entry size ${size} overflows the record`, p);
        patches.push({ offset, data: src.bytes.slice(dataStart, dataStart + size) });
        p = src.start + pad4(dataStart + size - src.start);
      }
      return { type, patches } as PatchBody<T>;
    },
    encode(body, out) {
      const from = out.length;
      for (const patch of (body as { patches: HeaderPatch[] }).patches) {
        if (fieldBytes === 2) {
          out.u16(patch.offset);
          out.u16(patch.data.length);
        } else {
          out.u32(patch.offset);
          out.u32(patch.data.length);
        }
        out.raw(patch.data);
        out.padFrom(from);
      }
    },
  };
}

/** HEADER_UPDATE (0x20): patches of struct mail_index_header. */
export const headerUpdateCodec = patchCodec("header-update", 2);
/** EXT_HDR_UPDATE (0x100): patches of the current extension's header. */
export const extHdrUpdateCodec = patchCodec("ext-hdr", 2);
/** EXT_HDR_UPDATE32 (0x10000): the same with 32-bit offset and size. */
export const extHdrUpdate32Codec = patchCodec("ext-hdr32", 4);
