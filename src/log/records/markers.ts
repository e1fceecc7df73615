import type { LogRecordBody } from "../types.js";
import { corrupt, type RecordCodec } from "./context.js";

type Boundary = Extract<LogRecordBody, { type: "boundary" }>;
type IndexDeleted = Extract<LogRecordBody, { type: "index-deleted" }>;
type IndexUndeleted = Extract<LogRecordBody, { type: "index-undeleted" }>;

/** BOUNDARY (0x80000): struct mail_transaction_boundary {size u32}, the transaction's byte length. */
export const boundaryCodec: RecordCodec<Boundary> = {
  decode(src) {
    if (src.end - src.start !== 4) throw corrupt(src, `boundary: payload of ${src.end - src.start} bytes`);
    return { type: "boundary", size: src.view.getUint32(src.start, true) };
  },
  encode: (body, out) => out.u32(body.size),
};

/** INDEX_DELETED / INDEX_UNDELETED carry a dummy u32: an empty payload is illegal. */
function markerCodec<T extends "index-deleted" | "index-undeleted">(type: T): RecordCodec<Extract<LogRecordBody, { type: T }>> {
  return {
    decode: () => ({ type }) as Extract<LogRecordBody, { type: T }>,
    encode: (_body, out) => out.u32(0),
  };
}

export const indexDeletedCodec: RecordCodec<IndexDeleted> = markerCodec("index-deleted");
export const indexUndeletedCodec: RecordCodec<IndexUndeleted> = markerCodec("index-undeleted");
