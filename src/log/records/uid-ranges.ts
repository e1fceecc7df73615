import type { LogRecordBody } from "../types.js";
import { readUidRanges, writeUidRanges, type RecordCodec } from "./context.js";

type Expunge = Extract<LogRecordBody, { type: "expunge" }>;
type KeywordReset = Extract<LogRecordBody, { type: "keyword-reset" }>;

/** EXPUNGE (legacy, 0xCD91): struct mail_transaction_expunge {uid1, uid2}[]. */
export const expungeCodec: RecordCodec<Expunge> = {
  decode: (src) => ({ type: "expunge", ranges: readUidRanges(src, src.start, "expunge") }),
  encode: (body, out) => writeUidRanges(body.ranges, out),
};

/** KEYWORD_RESET (0x800): struct mail_transaction_keyword_reset {uid1, uid2}[]. */
export const keywordResetCodec: RecordCodec<KeywordReset> = {
  decode: (src) => ({ type: "keyword-reset", ranges: readUidRanges(src, src.start, "keyword-reset") }),
  encode: (body, out) => writeUidRanges(body.ranges, out),
};
