import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MailCorruptedError } from "../../../../src/shared/errors.js";
import { dboxMessageEnd } from "../../../../src/drivers/dbox/message-end.js";
import { dboxBodyEnd, encodeDboxMessages } from "../../../../src/drivers/dbox/file-format.js";
import { buildDboxMetadata, DBOX_MAGIC_POST, findDboxMetadataEnd } from "../../../../src/drivers/dbox/metadata.js";
import { DBOX_MSG_HEADER_SIZE } from "../../../../src/drivers/dbox/file-header.js";
import { BYTE_VALUES, mutate, type Mutation } from "../../../../campaign/fuzz/mutate.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? 400);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const latin1 = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));

/** What the purge walked before: dboxBodyEnd, then the metadata magic and the block's end (skipDboxMetadata). */
function reference(bytes: Uint8Array, at: number, msgHeaderSize: number): { end: number; bodyEnd: number } | undefined {
  let bodyEnd: number;
  try {
    bodyEnd = dboxBodyEnd(bytes, at, msgHeaderSize);
  } catch (err) {
    if (err instanceof MailCorruptedError) return undefined;
    throw err;
  }
  if (bodyEnd + DBOX_MAGIC_POST.length > bytes.length || DBOX_MAGIC_POST.some((b, i) => bytes[bodyEnd + i] !== b)) return undefined;
  const end = findDboxMetadataEnd(bytes, bodyEnd);
  return end === undefined ? undefined : { end, bodyEnd };
}

function endOf(bytes: Uint8Array, at: number, msgHeaderSize = DBOX_MSG_HEADER_SIZE): { end: number; bodyEnd: number } | undefined {
  const out = { bodyEnd: -1 };
  const end = dboxMessageEnd(bytes, at, msgHeaderSize, out);
  return end < 0 ? undefined : { end, bodyEnd: out.bodyEnd };
}

const messages = [
  { body: latin1("Subject: a\r\n\r\nbody\r\n"), metadata: buildDboxMetadata({ receivedTime: 0x6b02bf65, virtualSize: 0x7d, guid: "b14b5b1d65bf026b6a2a000083ecc375" }) },
  { body: new Uint8Array(0), metadata: buildDboxMetadata({ receivedTime: 1, virtualSize: 0, guid: "00", origMailbox: "INBOX" }) },
  { body: latin1("x\n\x01\x03\n\n"), metadata: buildDboxMetadata({ receivedTime: 2, virtualSize: 7, guid: "ab", physicalSize: 7 }) },
];

describe("dboxMessageEnd", () => {
  it("gives each message's end and body end, as the map records them", () => {
    const { bytes, records } = encodeDboxMessages(messages);
    records.forEach((r, k) => {
      expect(endOf(bytes, r.offset)).toEqual({ end: r.offset + r.size, bodyEnd: r.offset + DBOX_MSG_HEADER_SIZE + messages[k].body.length });
    });
  });

  it("checks the metadata magic and finds the block's end, not the values (a purge copies them as bytes)", () => {
    const header = latin1(`\x01\x02N          ${"5".padStart(16, "0")}\n`);
    const bytes = new Uint8Array([...latin1("xx"), ...header, ...latin1("hello\n\x01\x03\nRnothex\nG2\n\nnext")]);
    expect(endOf(bytes, 2)).toEqual({ end: bytes.length - 4, bodyEnd: 2 + 30 + 5 });
    // A line led by a space (v1 padding) ends the block too.
    const padded = new Uint8Array([...header, ...latin1("hello\n\x01\x03\nG2\n   \nnext")]);
    expect(endOf(padded, 0)).toEqual({ end: padded.length - 4, bodyEnd: 35 });
  });

  it("is -1 for a wrong header magic or LF, a size that is not hex or reaches past the bytes, a wrong metadata magic, an unended block", () => {
    const ok = (size: string, rest: string) => new Uint8Array([...latin1(`\x01\x02N          ${size}\n`), ...latin1(rest)]);
    expect(endOf(ok("0000000000000001", "x\n\x01\x03\nG2\n\n"), 0)).toBeDefined();
    const bad: Uint8Array[] = [
      latin1(`\x01\x03N          0000000000000001\nx\n\x01\x03\n\n`),
      latin1(`\x01\x02N          0000000000000001 x\n\x01\x03\n\n`),
      ok("000000000000000G", "x\n\x01\x03\n\n"),
      ok("FFFFFFFFFFFFFFFF", "x\n\x01\x03\n\n"),
      ok("0000000000000100", "x\n\x01\x03\n\n"),
      ok("0000000000000001", "x\n\x01\x04\n\n"),
      ok("0000000000000001", "x\n\x01\x03\nG2\n"),
      ok("0000000000000001", "x\n\x01"),
      latin1(`\x01\x02N          00`),
    ];
    for (const bytes of bad) {
      expect(endOf(bytes, 0), JSON.stringify(Buffer.from(bytes).toString("latin1"))).toBeUndefined();
      expect(reference(bytes, 0, DBOX_MSG_HEADER_SIZE)).toBeUndefined();
    }
  });

  it("agrees with dboxBodyEnd and the metadata walk on mutated files, at every message offset (seed printed on failure)", () => {
    const { bytes, records } = encodeDboxMessages(messages);
    const mutation: fc.Arbitrary<Mutation> = fc.oneof(
      fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(...BYTE_VALUES, 0x30, 0x46, 0x03), fc.integer({ min: 0, max: 255 })) }),
      fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
      fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 3 }) }),
    );
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (edits) => {
        const mutated = mutate(bytes, edits);
        for (const r of records) expect(endOf(mutated, r.offset)).toEqual(reference(mutated, r.offset, DBOX_MSG_HEADER_SIZE));
      }),
      { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}) },
    );
  });
});
