import { assert } from "../../shared/errors.js";
import type { AppendedMessage, LogRecordBody } from "../types.js";
import { requireMultiple, type RecordCodec } from "./context.js";

type Append = Extract<LogRecordBody, { type: "append" }>;

/**
 * APPEND (0x2): struct mail_index_record {uid u32, flags u8, pad[3]}[].
 * The padding must be zero: Dovecot copies the whole 8 bytes into the new
 * index record, where bytes 5..7 belong to extension fields.
 */
export const appendCodec: RecordCodec<Append> = {
  decode(src) {
    const count = requireMultiple(src, 8, "append");
    const messages: AppendedMessage[] = new Array(count);
    for (let i = 0, p = src.start; i < count; i++, p += 8) {
      messages[i] = { uid: src.view.getUint32(p, true), flags: src.bytes[p + 4] };
    }
    return { type: "append", messages };
  },
  decodesToItself(body) {
    // The decoder gives each message's u32 uid and flags byte (uid 0 included: the fold refuses it).
    const messages = body.messages;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      if (m.uid >>> 0 !== m.uid || (m.flags & 0xff) !== m.flags) return false;
    }
    return true;
  },
  encode(body, out) {
    const messages = body.messages;
    // One reserve for the whole payload, one store per field (a rebuild or import appends thousands):
    // the flags word is the flags byte with its zero padding, little-endian.
    const at = out.reserve(messages.length * 8);
    const words = out.words(at);
    // Indexed, not for-of: run once per big transaction, mostly unoptimized, where for-of allocates per element.
    for (let i = 0, w = at >>> 2; i < messages.length; i++, w += 2) {
      const m = messages[i];
      // The message only when it fails: a template per message would cost more than the stores.
      if ((m.flags & 0xff) !== m.flags) assert(false, `${m.flags} does not fit a u8 field`);
      words[w] = m.uid;
      words[w + 1] = m.flags;
    }
  },
};
