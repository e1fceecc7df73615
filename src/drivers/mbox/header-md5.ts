/**
 * Dovecot's mbox header MD5 (`mbox_md5 = apop3d`, the default;
 * mbox-md5-apop3d.c), which Dovecot keeps in the `header-md5` index
 * extension. It identifies a message that has no X-UID yet (one an MDA
 * appended, whose headers Dovecot writes only on a later rewrite), and
 * `doveadm fetch guid` shows it in hex as the message's GUID (observed: a
 * message with none of the headers below has the GUID
 * d41d8cd98f00b204e9800998ecf8427e, the MD5 of nothing).
 *
 * Hashed, line by line, the values (header-fields.ts) of:
 * - the first `Received` field (all its lines);
 * - `Date` and `Message-ID`, but only before any `Received` was hashed;
 * - every `Delivered-To` and `X-Delivery-ID`.
 * Dovecot's own headers (Status, X-UID, …) never reach the hash: none of
 * them is one of these, so no field needs that check.
 */
import * as crypto from "node:crypto";
import { fieldName, fieldNameAt, walkHeaderLines } from "./header-fields.js";

/**
 * MD5 in one call: crypto.hash (Node 20.12 on) makes no Hash object, and
 * a Hash object, two updates and a digest per message were most of the
 * hashing when an import recognises 20,000 messages by their header MD5.
 */
const md5Of: (data: Uint8Array) => Uint8Array =
  typeof crypto.hash === "function" ? (data) => crypto.hash("md5", data, "buffer") : (data) => crypto.createHash("md5").update(data).digest();

/** The hashed values, one after another (MD5 of their concatenation = MD5 updated with each); reused, grown on demand. */
let hashed = new Uint8Array(1024);

/** The fields hashed; `received` only the first, `date` and `message-id` only before it. */
const HASHED_NAMES = ["date", "message-id", "received", "delivered-to", "x-delivery-id"];
/** First bytes of those names, either case: other lines' names are not read. */
const HASHED_FIRST_BYTES = new Uint8Array(256);
for (const name of HASHED_NAMES) {
  HASHED_FIRST_BYTES[name.charCodeAt(0)] = 1;
  HASHED_FIRST_BYTES[name.toUpperCase().charCodeAt(0)] = 1;
}

/** @returns the 16-byte header MD5 of the header block `block`. */
export function mboxHeaderMd5(block: Uint8Array): Uint8Array {
  let hashedBytes = 0;
  let seenReceived = false;
  /** The values of the field being walked are hashed. */
  let hashing = false;
  const add = (start: number, end: number) => {
    if (hashedBytes + (end - start) > hashed.length) {
      const grown = new Uint8Array(Math.max(2 * hashed.length, hashedBytes + (end - start)));
      grown.set(hashed.subarray(0, hashedBytes));
      hashed = grown;
    }
    hashed.set(block.subarray(start, end), hashedBytes);
    hashedBytes += end - start;
  };
  walkHeaderLines(block, {
    field(start, lineEnd) {
      hashing = false;
      if (HASHED_FIRST_BYTES[block[start]] !== 1) return;
      const [nameEnd, valueStart] = fieldNameAt(block, start, lineEnd);
      switch (fieldName(block, start, nameEnd).toLowerCase()) {
        case "date":
        case "message-id":
          hashing = !seenReceived;
          break;
        case "received":
          hashing = !seenReceived;
          seenReceived = true;
          break;
        case "delivered-to":
        case "x-delivery-id":
          hashing = true;
          break;
      }
      if (hashing && valueStart >= 0) add(valueStart, lineEnd);
    },
    continuation(start, lineEnd) {
      if (hashing) add(start, lineEnd);
    },
  });
  const md5 = md5Of(hashed.subarray(0, hashedBytes));
  return new Uint8Array(md5.buffer, md5.byteOffset, md5.byteLength);
}

/** @returns `md5` as Dovecot prints a GUID: 32 lower-case hex digits. */
export function md5Hex(md5: Uint8Array): string {
  return Buffer.from(md5).toString("hex");
}
