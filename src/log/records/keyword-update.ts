import { bytesToString, pad4, stringToBytes } from "../bytes.js";
import type { LogRecordBody } from "../types.js";
import { corrupt, readUidRanges, writeUidRanges, type RecordCodec } from "./context.js";

type KeywordUpdate = Extract<LogRecordBody, { type: "keyword-update" }>;

/**
 * KEYWORD_UPDATE (0x400): struct mail_transaction_keyword_update
 * {modify_type u8 (0 add, 1 remove), pad u8, name_size u16} + name + pad4,
 * then {uid1, uid2}[]. One keyword per record.
 */
export const keywordUpdateCodec: RecordCodec<KeywordUpdate> = {
  decode(src) {
    if (src.end - src.start < 4) throw corrupt(src, "keyword-update: truncated header");
    const modify = src.bytes[src.start];
    if (modify > 1) throw corrupt(src, `keyword-update: unknown modify type ${modify}`);
    const nameSize = src.view.getUint16(src.start + 2, true);
    if (nameSize === 0) throw corrupt(src, "keyword-update: empty keyword name");
    const nameStart = src.start + 4;
    const rangesStart = src.start + pad4(4 + nameSize);
    if (rangesStart >= src.end) throw corrupt(src, "keyword-update: no UID ranges after the name");
    return {
      type: "keyword-update",
      modifyType: modify === 0 ? "add" : "remove",
      name: bytesToString(src.bytes, nameStart, nameStart + nameSize),
      ranges: readUidRanges(src, rangesStart, "keyword-update"),
    };
  },
  encode(body, out) {
    const from = out.length;
    const name = stringToBytes(body.name);
    out.u8(body.modifyType === "add" ? 0 : 1);
    out.u8(0);
    out.u16(name.length);
    out.raw(name);
    out.padFrom(from);
    writeUidRanges(body.ranges, out);
  },
};
