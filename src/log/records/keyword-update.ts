import { bytesToString, pad4, stringToBytes } from "../bytes.js";
import type { LogRecordBody } from "../types.js";
import { corrupt, readUidRangesInto, writeUidRanges, type PayloadSource, type RecordCodec } from "./context.js";

export type KeywordUpdate = Extract<LogRecordBody, { type: "keyword-update" }>;

/**
 * KEYWORD_UPDATE (0x400): struct mail_transaction_keyword_update
 * {modify_type u8 (0 add, 1 remove), pad u8, name_size u16} + name + pad4,
 * then {uid1, uid2}[]. One keyword per record.
 */
export const keywordUpdateCodec: RecordCodec<KeywordUpdate> = {
  decode(src) {
    return decodeKeywordUpdateInto(src, { type: "keyword-update", modifyType: "add", name: "", ranges: [] });
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

/**
 * Decodes a KEYWORD_UPDATE payload into `target`, reusing its range objects
 * (a reusing scan decodes every keyword update into the same one). `names`,
 * when given, is asked for the name first, so that a log naming the same
 * few keywords does not build the same string again per record. Throws
 * LogCorruptedError for a payload Dovecot would reject. Returns `target`.
 */
export function decodeKeywordUpdateInto(src: PayloadSource, target: KeywordUpdate, names?: KeywordNameCache): KeywordUpdate {
  if (src.end - src.start < 4) throw corrupt(src, "keyword-update: truncated header");
  const modify = src.bytes[src.start];
  if (modify > 1) throw corrupt(src, `keyword-update: unknown modify type ${modify}`);
  const nameSize = src.view.getUint16(src.start + 2, true);
  if (nameSize === 0) throw corrupt(src, "keyword-update: empty keyword name");
  const nameStart = src.start + 4;
  const rangesStart = src.start + pad4(4 + nameSize);
  if (rangesStart >= src.end) throw corrupt(src, "keyword-update: no UID ranges after the name");
  target.modifyType = modify === 0 ? "add" : "remove";
  target.name = names?.lookup(src.bytes, nameStart, nameStart + nameSize) ?? bytesToString(src.bytes, nameStart, nameStart + nameSize);
  target.ranges = readUidRangesInto(src, rangesStart, "keyword-update", target.ranges);
  return target;
}

/**
 * The last few keyword names decoded, compared byte for byte with the next
 * one (names are latin1 here, one byte per character, as bytesToString reads them).
 */
export class KeywordNameCache {
  private readonly names: string[] = [];
  private next = 0;

  /** The name in bytes[start..end), decoded once and remembered. */
  lookup(bytes: Uint8Array, start: number, end: number): string {
    const length = end - start;
    for (const name of this.names) {
      // The last character first: names like $Label1..$Label5 differ there.
      if (name.length !== length || name.charCodeAt(length - 1) !== bytes[end - 1]) continue;
      let i = 0;
      while (i < length && name.charCodeAt(i) === bytes[start + i]) i++;
      if (i === length) return name;
    }
    const name = bytesToString(bytes, start, end);
    // A ring: a log cycling through more names than this only decodes as before.
    this.names[this.next] = name;
    this.next = (this.next + 1) % KEYWORD_NAMES_KEPT;
    return name;
  }
}

const KEYWORD_NAMES_KEPT = 16;
