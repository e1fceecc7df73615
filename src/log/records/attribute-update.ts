import { bytesToString, stringToBytes } from "../bytes.js";
import type { AttributeChange, LogRecordBody } from "../types.js";
import { corrupt, type RecordCodec } from "./context.js";

type AttributeUpdate = Extract<LogRecordBody, { type: "attribute-update" }>;

/**
 * ATTRIBUTE_UPDATE (0x100000): entries `('+'|'-') ('p'|'s') key NUL`, a NUL
 * terminator, pad4, then u32s in entry order: the timestamp, and for '+' also
 * the value length. Values themselves live outside the log.
 */
export const attributeUpdateCodec: RecordCodec<AttributeUpdate> = {
  decode(src) {
    const heads: Array<Pick<AttributeChange, "op" | "scope" | "key">> = [];
    let p = src.start;
    for (;;) {
      if (p >= src.end) throw corrupt(src, "attribute-update: list not terminated", p);
      if (src.bytes[p] === 0) break;
      const op = src.bytes[p];
      const scope = src.bytes[p + 1];
      if ((op !== 0x2b && op !== 0x2d) || (scope !== 0x70 && scope !== 0x73)) {
        throw corrupt(src, "attribute-update: entry does not start with +/- and p/s", p);
      }
      const keyStart = p + 2;
      const nul = src.bytes.indexOf(0, keyStart);
      if (nul < 0 || nul >= src.end) throw corrupt(src, "attribute-update: key not terminated", p);
      if (nul === keyStart) throw corrupt(src, "attribute-update: empty key", p);
      heads.push({
        op: op === 0x2b ? "+" : "-",
        scope: scope === 0x70 ? "p" : "s",
        key: bytesToString(src.bytes, keyStart, nul),
      });
      p = nul + 1;
    }
    p = src.start + ((p + 1 - src.start + 3) & ~3);
    const changes: AttributeChange[] = [];
    for (const head of heads) {
      const words = head.op === "+" ? 2 : 1;
      if (p + 4 * words > src.end) throw corrupt(src, "attribute-update: timestamps truncated", p);
      const change: AttributeChange = { ...head, timestamp: src.view.getUint32(p, true) };
      if (head.op === "+") change.valueLength = src.view.getUint32(p + 4, true);
      changes.push(change);
      p += 4 * words;
    }
    return { type: "attribute-update", changes };
  },
  encode(body, out) {
    const from = out.length;
    for (const c of body.changes) {
      out.raw(stringToBytes(c.op + c.scope + c.key));
      out.u8(0);
    }
    out.u8(0);
    out.padFrom(from);
    for (const c of body.changes) {
      out.u32(c.timestamp);
      if (c.op === "+") out.u32(c.valueLength ?? 0);
    }
  },
};
