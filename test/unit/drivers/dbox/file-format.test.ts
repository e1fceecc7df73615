import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError, MailCorruptedError } from "../../../../src/shared/errors.js";
import {
  dboxMessageSize,
  decodeDboxFile,
  decodeDboxMessageAt,
  decodeSdboxFile,
  encodeDboxFile,
  encodeDboxMessage,
  encodeDboxMessages,
  iterateDboxMessages,
} from "../../../../src/drivers/dbox/file-format.js";
import { decodeDboxFileHeader, encodeDboxFileHeader } from "../../../../src/drivers/dbox/file-header.js";
import { encodeDboxMessageHeader } from "../../../../src/drivers/dbox/message-header.js";
import { readDboxMetadata, type NewDboxMetadata, buildDboxMetadata } from "../../../../src/drivers/dbox/metadata.js";
import type { DboxItem } from "../../../../src/drivers/dbox/item.js";
import { MDBOX_M1, SDBOX_U1, SDBOX_ZLIB_U1 } from "./fixtures.js";

const latin1 = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));
const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");

/** Runs `fn`, expecting a MailCorruptedError; returns it. */
function corrupted(fn: () => unknown): MailCorruptedError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(MailCorruptedError);
    const e = err as MailCorruptedError;
    expect(e.code).toBe("MAIL_CORRUPTED");
    return e;
  }
  throw new Error("expected MailCorruptedError, nothing was thrown");
}

describe("decoding files Dovecot wrote", () => {
  it("reads an sdbox u.N: header, one message, metadata", () => {
    const file = decodeSdboxFile(SDBOX_U1, { path: "u.1" });
    expect(file.header).toEqual({ msgHeaderSize: 30, createStamp: 0x6b040977, unknownItems: [] });
    expect(file.headerSize).toBe(16);
    expect(file.message.offset).toBe(16);
    expect(file.message.size).toBe(SDBOX_U1.length - 16);
    expect(text(file.message.body)).toBe("From: a@b\nSubject: hi\n\nbody line\nsecond\n");
    expect(file.message.metadata).toEqual([
      { key: "R", value: "6b040977" },
      { key: "V", value: "2d" },
      { key: "G", value: "7d94eb257709046b7d35000083ecc375" },
    ]);
    expect(readDboxMetadata(file.message.metadata)).toEqual({ receivedTime: 0x6b040977, virtualSize: 45, guid: "7d94eb257709046b7d35000083ecc375" });
  });

  it("walks every message of an mdbox m.N with the offsets doveadm dump prints", () => {
    const file = decodeDboxFile(MDBOX_M1, { path: "m.1" });
    expect(file.messages.map((m) => m.offset)).toEqual([16, 135, 256]);
    expect(file.messages.map((m) => m.body.length)).toEqual([0x1d, 0x1f, 0x1b]);
    // Each message ends where the next begins; the last one at EOF.
    for (let i = 0; i < 3; i++) {
      const next = i < 2 ? file.messages[i + 1].offset : MDBOX_M1.length;
      expect(file.messages[i].offset + file.messages[i].size).toBe(next);
    }
    expect(text(file.messages[1].body).endsWith("body3")).toBe(true);
    expect(file.messages.map((m) => readDboxMetadata(m.metadata).origMailbox)).toEqual(["INBOX", "INBOX", "INBOX"]);
    expect([...iterateDboxMessages(MDBOX_M1, 16, 30)].map((m) => m.offset)).toEqual([16, 135, 256]);
  });

  it("reads the plaintext size Z of a compressed message", () => {
    const file = decodeSdboxFile(SDBOX_ZLIB_U1);
    expect(file.message.body.length).toBe(47);
    expect(file.message.metadata[0]).toEqual({ key: "Z", value: "125" });
    expect(readDboxMetadata(file.message.metadata)).toMatchObject({ physicalSize: 293, virtualSize: 297 });
  });

  it("re-encodes every fixture to identical bytes", () => {
    for (const bytes of [SDBOX_U1, MDBOX_M1, SDBOX_ZLIB_U1]) {
      expect(Buffer.from(encodeDboxFile(decodeDboxFile(bytes))).equals(Buffer.from(bytes))).toBe(true);
    }
  });

  it("returns bodies as views of the input, not copies", () => {
    const file = decodeDboxFile(MDBOX_M1);
    expect(file.messages[0].body.buffer).toBe(MDBOX_M1.buffer);
  });

  it("decodes one message from a window of the file (baseOffset)", () => {
    const window = MDBOX_M1.subarray(135, 256);
    const m = decodeDboxMessageAt(window, 0, 30, { path: "m.1", baseOffset: 135 });
    expect(m.offset).toBe(135);
    expect(m.size).toBe(121);
    const e = corrupted(() => decodeDboxMessageAt(window.subarray(0, 100), 0, 30, { path: "m.1", baseOffset: 135 }));
    expect(e.offset).toBeGreaterThanOrEqual(135);
  });
});

describe("encoding", () => {
  it("writes the header line and 30-byte message header as Dovecot does", () => {
    expect(text(encodeDboxFileHeader({ msgHeaderSize: 30, createStamp: 0x6b02bf44, unknownItems: [] }))).toBe("2 M1e C6b02bf44\n");
    expect(text(encodeDboxFileHeader({ msgHeaderSize: 30, unknownItems: [{ key: "A", value: "7" }] }))).toBe("2 M1e A7\n");
    expect(text(encodeDboxMessageHeader(0x76))).toBe("\x01\x02N          0000000000000076\n");
    expect(text(encodeDboxMessageHeader(0xabcdef))).toBe("\x01\x02N          0000000000ABCDEF\n");
  });

  it("builds a file byte-identical to Dovecot's from typed metadata", () => {
    const original = decodeSdboxFile(SDBOX_U1).message;
    const meta: NewDboxMetadata = { receivedTime: 0x6b040977, virtualSize: 0x2d, guid: "7d94eb257709046b7d35000083ecc375" };
    const bytes = encodeDboxFile({
      header: { msgHeaderSize: 30, createStamp: 0x6b040977, unknownItems: [] },
      messages: [{ body: original.body, metadata: buildDboxMetadata(meta) }],
    });
    expect(Buffer.from(bytes).equals(Buffer.from(SDBOX_U1))).toBe(true);
  });

  it("reports each message's offset and size as a map record would", () => {
    const file = decodeDboxFile(MDBOX_M1);
    const { bytes, records } = encodeDboxMessages(file.messages);
    expect(records.map((r) => r.offset + 16)).toEqual([16, 135, 256]);
    expect(records.map((r) => r.size)).toEqual(file.messages.map((m) => m.size));
    expect(records.map((r) => r.size)).toEqual(file.messages.map((m) => dboxMessageSize(m.body.length, m.metadata)));
    expect(Buffer.from(bytes).equals(Buffer.from(MDBOX_M1.subarray(16)))).toBe(true);
    expect(encodeDboxMessage(file.messages[2]).length).toBe(file.messages[2].size);
  });

  it("refuses what it cannot write", () => {
    expect(() => encodeDboxFileHeader({ msgHeaderSize: 31, unknownItems: [] })).toThrow(InvalidArgumentError);
    expect(() => encodeDboxFileHeader({ msgHeaderSize: 30, unknownItems: [{ key: "A", value: "a b" }] })).toThrow(InvalidArgumentError);
    const body = latin1("x\n");
    expect(() => encodeDboxMessage({ body, metadata: [{ key: "G", value: "a\nb" }] })).toThrow(InvalidArgumentError);
    expect(() => encodeDboxMessage({ body, metadata: [{ key: "", value: "x" }] })).toThrow(InvalidArgumentError);
    expect(() => encodeDboxMessage({ body, metadata: [{ key: " ", value: "x" }] })).toThrow(InvalidArgumentError);
    expect(() => encodeDboxMessage({ body, metadata: [{ key: "G", value: "\u0100" }] })).toThrow();
  });
});

const itemArb: fc.Arbitrary<DboxItem> = fc.oneof(
  fc.record({ key: fc.constantFrom("R", "V", "Z"), value: fc.integer({ min: 0, max: 2 ** 40 }).map((n) => n.toString(16)) }),
  fc.record({ key: fc.constant("O"), value: fc.nat().map(String) }),
  fc.record({
    key: fc.constantFrom("G", "P", "B", "X", "Q", "E", "a", "\x01"),
    value: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b.filter((c) => c !== 0x0a)).toString("latin1")),
  }),
);
const messageArb = fc.record({ body: fc.uint8Array({ maxLength: 300 }), metadata: fc.array(itemArb, { maxLength: 8 }) });
const fileArb = fc.record({
  header: fc.record({
    msgHeaderSize: fc.constant(30),
    createStamp: fc.integer({ min: 0, max: 0xffffffff }),
    unknownItems: fc.array(fc.record({ key: fc.constantFrom("A", "X", "z"), value: fc.stringMatching(/^[a-z0-9]{0,6}$/) }), { maxLength: 2 }),
  }),
  messages: fc.array(messageArb, { minLength: 0, maxLength: 5 }),
});

describe("round trips (property)", () => {
  it("decode(encode(file)) gives back every field, and encode(decode(bytes)) the bytes", () => {
    fc.assert(
      fc.property(fileArb, (file) => {
        const bytes = encodeDboxFile(file);
        const decoded = decodeDboxFile(bytes);
        expect(decoded.header).toEqual(file.header);
        expect(decoded.messages.length).toBe(file.messages.length);
        decoded.messages.forEach((m, i) => {
          expect(Buffer.from(m.body).equals(Buffer.from(file.messages[i].body))).toBe(true);
          expect(m.metadata).toEqual(file.messages[i].metadata);
        });
        expect(Buffer.from(encodeDboxFile(decoded)).equals(Buffer.from(bytes))).toBe(true);
      }),
    );
  });

  it("any byte flip or truncation either decodes or throws MailCorruptedError with an offset inside the file", () => {
    fc.assert(
      fc.property(fileArb, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean(), (file, where, value, truncate) => {
        const bytes = encodeDboxFile(file).slice();
        const at = where % bytes.length;
        const broken = truncate ? bytes.subarray(0, at) : (bytes.set([value], at), bytes);
        try {
          decodeDboxFile(broken, { path: "fuzz" });
        } catch (err) {
          expect(err).toBeInstanceOf(MailCorruptedError);
          const e = err as MailCorruptedError;
          expect(e.path).toBe("fuzz");
          expect(e.offset).toBeGreaterThanOrEqual(0);
          expect(e.offset).toBeLessThanOrEqual(broken.length);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("corruption", () => {
  const P = "/x/m.1";
  const where = (bytes: Uint8Array) => corrupted(() => decodeDboxFile(bytes, { path: P }));

  it("names the file in every error", () => {
    const e = where(new Uint8Array(0));
    expect(e.path).toBe(P);
    expect(e.message).toContain(P);
    expect(e.offset).toBe(0);
  });

  it.each([
    ["empty file", ""],
    ["header line without LF", "2 M1e C6b040977"],
    ["version 1", "1 M1e C1\n"],
    ["version 3", "3 M1e C1\n"],
    ["no version", "M1e C1\n"],
    ["version without space", "2M1e\n"],
    ["missing M", "2 C6b040977\n"],
    ["M0", "2 M0 C1\n"],
    ["M below 30", "2 M1d C1\n"],
    ["M not hex", "2 Mzz C1\n"],
    ["C not hex", "2 M1e Cxyz\n"],
  ])("bad file header: %s → offset 0", (_name, header) => {
    expect(where(latin1(header)).offset).toBe(0);
  });

  const head = "2 M1e C1\n"; // 9 bytes: messages start at offset 9
  const msgHeader = (size: string) => `\x01\x02N          ${size}\n`;
  const good = (body: string) => msgHeader(body.length.toString(16).toUpperCase().padStart(16, "0")) + body + "\n\x01\x03\nR1\n\n";

  it.each([
    ["truncated message header", head + "\x01\x02N   ", 9],
    ["wrong magic", head + msgHeader("0000000000000001").replace("\x02", "\x03") + "x\n\x01\x03\n\n", 9],
    ["header not ending in LF", head + msgHeader("0000000000000001").replace(/\n$/, " ") + "x\n\x01\x03\n\n", 9],
    ["size not hex", head + msgHeader("00000000000000G1") + "x\n\x01\x03\n\n", 9],
    ["size beyond 2^53", head + msgHeader("FFFFFFFFFFFFFFFF") + "x\n\x01\x03\n\n", 9],
    ["size past EOF", head + msgHeader("0000000000000100") + "x\n\x01\x03\n\n", 9],
    ["no metadata after body", head + msgHeader("0000000000000001") + "x", 9 + 30 + 1],
    ["short metadata magic", head + msgHeader("0000000000000001") + "x\n\x01", 9 + 30 + 1],
    ["invalid metadata magic", head + msgHeader("0000000000000001") + "x\n\x01\x04\nR1\n\n", 9 + 30 + 1],
    ["missing end-of-metadata line", head + msgHeader("0000000000000001") + "x\n\x01\x03\nR1\nGabc\n", 9 + 30 + 1 + 4 + 3 + 5],
    ["metadata ends mid-line", head + msgHeader("0000000000000001") + "x\n\x01\x03\nR1\nGab", 9 + 30 + 1 + 4 + 3],
    ["R not hex", head + msgHeader("0000000000000001") + "x\n\x01\x03\nRxyz\n\n", 9 + 30 + 1 + 4],
    ["V empty", head + msgHeader("0000000000000001") + "x\n\x01\x03\nR1\nV\n\n", 9 + 30 + 1 + 4 + 3],
    ["O not decimal", head + msgHeader("0000000000000001") + "x\n\x01\x03\nO-1\n\n", 9 + 30 + 1 + 4],
    ["garbage after the last message", head + good("abc") + "\x01\x02", 9 + good("abc").length],
    ["bad second message", head + good("abc") + good("de").replace("\x01\x02", "\x01\x01"), 9 + good("abc").length],
  ])("%s → MailCorruptedError at the offset of the problem", (_name, file, offset) => {
    expect(where(latin1(file)).offset).toBe(offset);
  });

  it("accepts a file with a header and no message (an m.N being created)", () => {
    expect(decodeDboxFile(latin1(head)).messages).toEqual([]);
  });

  it("sdbox files must hold exactly one message", () => {
    expect(corrupted(() => decodeSdboxFile(latin1(head), { path: "u.1" })).offset).toBe(9);
    expect(corrupted(() => decodeSdboxFile(MDBOX_M1, { path: "u.1" })).offset).toBe(135);
  });

  it("every truncation of a Dovecot m.N decodes to whole messages or fails with an offset", () => {
    const boundaries = new Set([16, 135, 256, MDBOX_M1.length]);
    for (let n = 0; n < MDBOX_M1.length; n++) {
      const prefix = MDBOX_M1.subarray(0, n);
      if (boundaries.has(n)) {
        expect(decodeDboxFile(prefix).messages.length).toBe([16, 135, 256].indexOf(n));
      } else {
        const e = where(prefix);
        expect(e.offset).toBeLessThanOrEqual(n);
        // The error points at the message that is cut (or the header line).
        expect([0, 16, 135, 256].some((o) => e.offset! >= o)).toBe(true);
      }
    }
  });

  it("never allocates from a size field: a 2^52-byte claim fails fast", () => {
    const bytes = latin1(head + msgHeader("0010000000000000") + "x\n\x01\x03\n\n");
    expect(where(bytes).message).toMatch(/past the end/);
  });

  it("decodeDboxFileHeader keeps unknown items and accepts a missing C", () => {
    expect(decodeDboxFileHeader(latin1("2 M1e A10 Cff Qx\n"))).toEqual({
      header: { msgHeaderSize: 30, createStamp: 255, unknownItems: [{ key: "A", value: "10" }, { key: "Q", value: "x" }] },
      headerSize: 17,
    });
    expect(decodeDboxFileHeader(latin1("2 M1e\n")).header).toEqual({ msgHeaderSize: 30, unknownItems: [] });
  });

  it("reads files whose message headers are longer than 30 bytes (M > 30)", () => {
    const bytes = latin1("2 M20 C1\n" + "\x01\x02N          0000000000000001  \n" + "x\n\x01\x03\nR1\n\n");
    const file = decodeDboxFile(bytes);
    expect(file.messages[0]).toMatchObject({ offset: 9, size: 32 + 1 + 8 });
    expect(text(file.messages[0].body)).toBe("x");
    expect(() => encodeDboxFile(file)).toThrow(InvalidArgumentError);
  });
});
