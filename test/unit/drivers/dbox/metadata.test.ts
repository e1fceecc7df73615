import { describe, expect, it } from "vitest";
import { InvalidArgumentError, MailCorruptedError } from "../../../../src/shared/errors.js";
import {
  buildDboxMetadata,
  dboxMetadataSize,
  decodeDboxMetadata,
  encodeDboxMetadata,
  findDboxMetadataEnd,
  readDboxMetadata,
  DboxMetadataForRebuild,
  walkDboxMetadata,
} from "../../../../src/drivers/dbox/metadata.js";

const latin1 = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));
const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");

describe("metadata block", () => {
  it("encodes the observed mdbox tail", () => {
    const items = buildDboxMetadata({ receivedTime: 0x6b02bf65, virtualSize: 0x7d, guid: "b14b5b1d65bf026b6a2a000083ecc375", origMailbox: "INBOX" });
    expect(text(encodeDboxMetadata(items))).toBe("\n\x01\x03\nR6b02bf65\nV7d\nGb14b5b1d65bf026b6a2a000083ecc375\nBINBOX\n\n");
    expect(dboxMetadataSize(items)).toBe(encodeDboxMetadata(items).length);
  });

  it("builds items in Dovecot's order [Z] R V [P] [O] G [B] [X], extra last", () => {
    const items = buildDboxMetadata({
      extRefs: "0 10 2 ref",
      origMailbox: "Entwürfe",
      guid: "g",
      pop3Order: 7,
      pop3Uidl: "uidl-1",
      virtualSize: 20,
      receivedTime: 16,
      physicalSize: 255,
      extra: [{ key: "Q", value: "future" }],
    });
    expect(items.map((i) => i.key).join("")).toBe("ZRVPOGBXQ");
    expect(items.find((i) => i.key === "Z")!.value).toBe("ff");
    expect(items.find((i) => i.key === "O")!.value).toBe("7");
    // B is UTF-8 on disk; the item value is its byte string.
    expect(items.find((i) => i.key === "B")!.value).toBe(Buffer.from("Entwürfe", "utf8").toString("latin1"));
    expect(readDboxMetadata(items)).toEqual({
      physicalSize: 255,
      receivedTime: 16,
      virtualSize: 20,
      pop3Uidl: "uidl-1",
      pop3Order: 7,
      guid: "g",
      origMailbox: "Entwürfe",
      extRefs: "0 10 2 ref",
    });
  });

  it("refuses values that would break the block", () => {
    expect(() => buildDboxMetadata({ guid: "", receivedTime: 1, virtualSize: 1 })).toThrow(InvalidArgumentError);
    expect(() => buildDboxMetadata({ guid: "a", receivedTime: -1, virtualSize: 1 })).toThrow(InvalidArgumentError);
    expect(() => buildDboxMetadata({ guid: "a", receivedTime: 1.5, virtualSize: 1 })).toThrow(InvalidArgumentError);
    expect(() => buildDboxMetadata({ guid: "a", receivedTime: 1, virtualSize: 1, origMailbox: "a\rb" })).toThrow(InvalidArgumentError);
    expect(() => buildDboxMetadata({ guid: "a\nb", receivedTime: 1, virtualSize: 1 })).toThrow(InvalidArgumentError);
    expect(() => buildDboxMetadata({ guid: "a", receivedTime: 1, virtualSize: 1, pop3Order: -2 })).toThrow(InvalidArgumentError);
  });

  it("keeps duplicates and unknown keys in order; the first of a key wins when reading", () => {
    const bytes = latin1("\n\x01\x03\nRa\nQzz\nRb\nG1\n\n");
    const { items, end } = decodeDboxMetadata(bytes, 0);
    expect(end).toBe(bytes.length);
    expect(items).toEqual([
      { key: "R", value: "a" },
      { key: "Q", value: "zz" },
      { key: "R", value: "b" },
      { key: "G", value: "1" },
    ]);
    expect(readDboxMetadata(items).receivedTime).toBe(10);
    expect(text(encodeDboxMetadata(items))).toBe(text(bytes));
  });

  it("a line starting with a space ends the block, as in Dovecot's reader (v1 padding)", () => {
    const bytes = latin1("\n\x01\x03\nR1\n      \nNEXT");
    expect(decodeDboxMetadata(bytes, 0)).toEqual({ items: [{ key: "R", value: "1" }], end: 14 });
    expect(findDboxMetadataEnd(bytes, 0)).toBe(14);
  });

  it("findDboxMetadataEnd says when more bytes are needed", () => {
    const bytes = latin1("\n\x01\x03\nR1\nG2\n\n");
    for (let n = 0; n < bytes.length; n++) expect(findDboxMetadataEnd(bytes.subarray(0, n), 0)).toBeUndefined();
    expect(findDboxMetadataEnd(bytes, 0)).toBe(bytes.length);
  });

  it("findDboxMetadataEnd looks no further than limit: bytes past it (a read-ahead window's) are not the block's", () => {
    const bytes = latin1("\n\x01\x03\nR1\nG2\n\nNEXT\n\n");
    const end = 11;
    for (let limit = 0; limit < end; limit++) expect(findDboxMetadataEnd(bytes, 0, limit)).toBeUndefined();
    for (let limit = end; limit <= bytes.length; limit++) expect(findDboxMetadataEnd(bytes, 0, limit)).toBe(end);
    // From inside a buffer: the block at 4, its end line within limit.
    const inner = latin1("BODY\n\x01\x03\nR1\n\nXX\n");
    expect(findDboxMetadataEnd(inner, 4, 11)).toBeUndefined();
    expect(findDboxMetadataEnd(inner, 4, 12)).toBe(12);
  });

  it("DboxMetadataForRebuild through walkDboxMetadata with more bytes to come: false for a cut block, the same read once whole", () => {
    const bytes = latin1("\n\x01\x03\nR1\nGabc\nBINBOX\n\nNEXT");
    const out = new DboxMetadataForRebuild();
    // What the rebuild's scan does per block.
    const readForRebuild = (b: Uint8Array, at: number, where: { path?: string; baseOffset?: number }, meta: DboxMetadataForRebuild, more = false) => {
      meta.reset();
      meta.end = walkDboxMetadata(b, at, where, meta.take, more);
      return meta.end >= 0;
    };
    for (let n = 0; n < 20; n++) expect(readForRebuild(bytes.subarray(0, n), 0, {}, out, true)).toBe(false);
    expect(readForRebuild(bytes, 0, {}, out, true)).toBe(true);
    expect({ ...out, take: undefined }).toEqual({ end: 20, guidStart: 8, guidEnd: 11, origStart: 13, origEnd: 18, take: undefined });
    // Without more to come, a cut block is an error, and a bad value is one either way.
    expect(() => readForRebuild(bytes.subarray(0, 12), 0, {}, out)).toThrow(MailCorruptedError);
    expect(() => readForRebuild(latin1("\n\x01\x03\nRzz\nG"), 0, {}, out, true)).toThrow(MailCorruptedError);
  });

  it("errors carry path and file offset (baseOffset added)", () => {
    try {
      decodeDboxMetadata(latin1("xx\n\x01\x03\nR1\n"), 2, { path: "m.9", baseOffset: 1000 });
      throw new Error("no error");
    } catch (err) {
      expect(err).toBeInstanceOf(MailCorruptedError);
      expect((err as MailCorruptedError).path).toBe("m.9");
      expect((err as MailCorruptedError).offset).toBe(1000 + 2 + 4 + 3);
    }
  });
});
