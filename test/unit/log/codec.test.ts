import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeLogFile, encodeTransaction } from "../../../src/log/encode-file.js";
import { encodeRecord } from "../../../src/log/codec.js";
import { parseLogBytes } from "../../../src/log/file.js";
import { encodeLogHeader } from "../../../src/log/header.js";
import { decodeRecordSize, encodeRecordSize } from "../../../src/log/size-encoding.js";
import { LogCorruptedError, LogHeaderError } from "../../../src/shared/errors.js";
import type { LogRecord } from "../../../src/log/types.js";
import { logTransaction } from "../../helpers/log-arbitraries.js";

const header = { indexId: 0x65000000, fileSeq: 1, prevFileSeq: 0, prevFileOffset: 0, createStamp: 0x65000000, initialModseq: 1n };
const ext = { external: true, sync: false };

function logOf(...transactions: LogRecord[][]): Uint8Array {
  const parts = [encodeLogHeader(header), ...transactions.map((t) => encodeTransaction(t))];
  return Buffer.concat(parts);
}

describe("record size encoding", () => {
  it("matches the examples checked against doveadm", () => {
    const enc = (n: number) => { const b = new Uint8Array(4); encodeRecordSize(n, b, 0); return Buffer.from(b).toString("hex"); };
    expect(enc(12)).toBe("80808083");
    expect(enc(16)).toBe("80808084");
    expect(enc(36)).toBe("80808089");
    expect(enc(540)).toBe("80808187");
  });
  it("round-trips every multiple of 4 and reads a missing marker bit as 0", () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 0x0fffffff }), (q) => {
      const b = new Uint8Array(4);
      encodeRecordSize(q * 4, b, 0);
      expect(decodeRecordSize(b, 0)).toBe(q * 4);
      b[q % 4] &= 0x7f;
      expect(decodeRecordSize(b, 0)).toBe(0);
    }));
    expect(() => encodeRecordSize(6, new Uint8Array(4), 0)).toThrow(RangeError);
  });
});

describe("log codec", () => {
  it("writes the worked example of transaction-log.md §11a byte for byte", () => {
    const dboxHdr = Uint8Array.from(Buffer.from("00000000000000000000000000000000000000000000000000".slice(0, 48), "hex"));
    const uidValidity = new Uint8Array(4);
    new DataView(uidValidity.buffer).setUint32(0, 0x65000000, true);
    const bytes = logOf(
      [
        { type: "ext-intro", ...ext, intros: [{ extId: 0xffffffff, resetId: 0, hdrSize: 24, recordSize: 0, recordAlign: 0, flags: 1, name: "dbox-hdr" }] },
        { type: "ext-hdr", ...ext, patches: [{ offset: 0, data: dboxHdr }] },
        { type: "header-update", ...ext, patches: [{ offset: 24, data: uidValidity }] },
      ],
      [
        { type: "append", ...ext, messages: [{ uid: 1, flags: 0x08 }] },
        { type: "keyword-update", ...ext, modifyType: "add", name: "tskw1", ranges: [{ uid1: 1, uid2: 1 }] },
      ],
    );
    expect(bytes.length).toBe(196);
    const hex = Buffer.from(bytes).toString("hex");
    expect(hex.slice(0, 0x28 * 2)).toBe("0103280000000065010000000000000000000000000000650100000000000000010000000000000000000000".slice(0, 80));
    expect(hex.slice(0x28 * 2, 0x34 * 2)).toBe("808080830000081064000000");
    expect(hex.slice(0x34 * 2, 0x58 * 2)).toBe("8080808940000010ffffffff0000000018000000000000000100080064626f782d686472");
    expect(hex.slice(0x7c * 2, 0x8c * 2)).toBe("80808084200000101800040000000065");
    expect(hex.slice(0x8c * 2, 0x98 * 2)).toBe("808080830000081038000000");
    expect(hex.slice(0x98 * 2, 0xa8 * 2)).toBe("80808084020000100100000008000000");
    expect(hex.slice(0xa8 * 2)).toBe("80808087000400100000050074736b77310000000100000001000000");
    const parsed = parseLogBytes(bytes, "example.log");
    expect(parsed.transactions.map((t) => t.modseq)).toEqual([1n, 3n]);
    expect(parsed.transactions[1].entries.map((e) => e.modseq)).toEqual([2n, 3n]);
  });

  it("round-trips any transaction byte for byte (property)", () => {
    fc.assert(fc.property(fc.array(logTransaction, { minLength: 1, maxLength: 6 }), (txs) => {
      const bytes = logOf(...txs);
      const parsed = parseLogBytes(bytes, "p.log");
      expect(parsed.syncOffset).toBe(bytes.length);
      expect(parsed.transactions.length).toBe(txs.length);
      parsed.transactions.forEach((t, i) => expect(t.entries.map((e) => e.record)).toEqual(txs[i]));
      const again = encodeLogFile(parsed.header, parsed.transactions.map((t) => ({ framed: t.framed, records: t.entries.map((e) => e.record) })));
      expect(Buffer.compare(Buffer.from(again), Buffer.from(bytes))).toBe(0);
    }), { numRuns: 300 });
  });

  it("writes an EXPUNGE_GUID's GUID as 16 bytes (a shorter one zero-padded, a longer one cut) and an EXT_ATOMIC_INC's diff in two's complement", () => {
    const guid = (n: number) => Uint8Array.from({ length: n }, (_, i) => i + 1);
    const hex = (r: LogRecord) => Buffer.from(encodeRecord(r)).toString("hex").slice(16);
    expect(hex({ type: "expunge-guid", ...ext, expunges: [{ uid: 0x01020304, guid: guid(5) }, { uid: 7, guid: guid(20) }, { uid: 8, guid: guid(16) }] })).toBe(
      "04030201" + "0102030405" + "00".repeat(11) + "07000000" + "0102030405060708090a0b0c0d0e0f10" + "08000000" + "0102030405060708090a0b0c0d0e0f10",
    );
    expect(hex({ type: "ext-atomic-inc", ...ext, updates: [{ uid: 0xfffffffe, diff: -1 }, { uid: 2, diff: -(2 ** 31) }, { uid: 3, diff: 2 ** 31 - 1 }] })).toBe(
      "feffffff" + "ffffffff" + "02000000" + "00000080" + "03000000" + "ffffff7f",
    );
  });

  it("counts modseqs as Dovecot does", () => {
    const bytes = logOf(
      [{ type: "append", ...ext, messages: [{ uid: 1, flags: 0 }, { uid: 2, flags: 0 }] }],
      [{ type: "flag-update", ...ext, external: false, updates: [{ uid1: 1, uid2: 1, addFlags: 0x40, removeFlags: 0, modseqIncFlag: 0 }] }],
      [{ type: "flag-update", ...ext, external: false, updates: [{ uid1: 1, uid2: 1, addFlags: 0x08, removeFlags: 0, modseqIncFlag: 0 }] }],
      [{ type: "expunge-guid", ...ext, external: false, expunges: [{ uid: 1, guid: new Uint8Array(16) }] }],
      [{ type: "expunge-guid", ...ext, expunges: [{ uid: 1, guid: new Uint8Array(16) }] }],
      [{ type: "modseq-update", ...ext, updates: [{ uid: 2, modseq: 40n }] }],
      [{ type: "keyword-reset", ...ext, ranges: [{ uid1: 2, uid2: 2 }] }],
    );
    const mods = parseLogBytes(bytes, "m.log").transactions.map((t) => t.modseq);
    expect(mods).toEqual([2n, 2n, 3n, 3n, 4n, 40n, 41n]);
  });
});

describe("bad input", () => {
  const good = logOf(
    [{ type: "append", ...ext, messages: [{ uid: 1, flags: 0 }] }],
    [{ type: "flag-update", ...ext, updates: [{ uid1: 1, uid2: 1, addFlags: 8, removeFlags: 0, modseqIncFlag: 0 }] }],
  );
  const withType = (typeField: number) => {
    const b = Uint8Array.from(good);
    new DataView(b.buffer).setUint32(40 + 4, typeField, true);
    return b;
  };

  it("names file and offset for an unknown record type", () => {
    const err = catchError(() => parseLogBytes(withType(0x10000008), "bad.log"));
    expect(err).toBeInstanceOf(LogCorruptedError);
    expect(err).toMatchObject({ code: "LOG_CORRUPTED", path: "bad.log", fileSeq: 1, offset: 40 });
  });
  it("rejects an expunge without its protection mask", () => {
    expect(() => parseLogBytes(withType(0x10000001), "bad.log")).toThrow(/protection mask/);
    expect(() => parseLogBytes(withType(0x10002000), "bad.log")).toThrow(/protection mask/);
  });
  it("rejects a record with no payload and a header that cannot be used", () => {
    const b = Uint8Array.from(good);
    encodeRecordSize(8, b, 40);
    expect(() => parseLogBytes(b, "bad.log")).toThrow(LogCorruptedError);
    const h = Uint8Array.from(good);
    h[0] = 2;
    expect(() => parseLogBytes(h, "bad.log")).toThrow(LogHeaderError);
    expect(() => parseLogBytes(good.subarray(0, 20), "bad.log")).toThrow(LogHeaderError);
    const z = Uint8Array.from(good);
    z.fill(0, 4, 8);
    expect(() => parseLogBytes(z, "bad.log")).toThrow(/marked corrupted/);
  });
  it("rejects an ext-rec-update that has no ext-intro before it", () => {
    const rec = encodeRecord({ type: "ext-rec", ...ext, recordSize: 4, updates: [{ uid: 1, data: new Uint8Array(4) }] });
    expect(() => parseLogBytes(Buffer.concat([encodeLogHeader(header), rec]), "bad.log")).toThrow(/without a preceding ext-intro/);
  });
});

describe("torn tail", () => {
  it("returns exactly the complete transactions at every truncation point", () => {
    fc.assert(fc.property(fc.array(logTransaction, { minLength: 2, maxLength: 5 }), (txs) => {
      const bytes = logOf(...txs);
      const full = parseLogBytes(bytes, "t.log");
      const last = full.transactions[full.transactions.length - 1];
      for (let cut = last.position.offset; cut < bytes.length; cut++) {
        const torn = parseLogBytes(bytes.subarray(0, cut), "t.log");
        expect(torn.transactions.length).toBe(full.transactions.length - 1);
        expect(torn.syncOffset).toBe(last.position.offset);
      }
    }), { numRuns: 60 });
  });
});

function catchError(fn: () => unknown): unknown {
  try { fn(); } catch (err) { return err; }
  throw new Error("expected an error");
}

describe("encoders assert what the reader checks (a bug, not bad input: the API normalizes ranges)", () => {
  const req = { external: false, sync: false };
  it.each([
    ["uid1 > uid2", [{ uid1: 5, uid2: 3 }]],
    ["uid 0", [{ uid1: 0, uid2: 3 }]],
    ["overlapping", [{ uid1: 1, uid2: 5 }, { uid1: 5, uid2: 6 }]],
    ["descending", [{ uid1: 7, uid2: 8 }, { uid1: 1, uid2: 2 }]],
  ])("refuses to encode UID ranges: %s", (_what, ranges) => {
    expect(() => encodeRecord({ type: "expunge", ...req, ranges })).toThrow(/internal error/);
    expect(() => encodeRecord({ type: "keyword-update", ...req, modifyType: "add", name: "k", ranges })).toThrow(/internal error/);
    expect(() => encodeRecord({ type: "flag-update", ...req, updates: ranges.map((r) => ({ ...r, addFlags: 8, removeFlags: 0, modseqIncFlag: 0 })) })).toThrow(/internal error/);
  });
});

describe("encoders refuse values that do not fit their fields", () => {
  it("a keyword name or extension name longer than a u16 length, or a header patch past a u16 offset, is an assertion, not a wrapped length", () => {
    const req = { external: false, sync: false } as const;
    expect(() => encodeRecord({ type: "keyword-update", ...req, modifyType: "add", name: "k".repeat(70_000), ranges: [{ uid1: 1, uid2: 1 }] })).toThrow(/does not fit a u16 field/);
    expect(() => encodeRecord({ type: "header-update", ...req, patches: [{ offset: 70_000, data: new Uint8Array(4) }] })).toThrow(/does not fit a u16 field/);
  });

  it("an append's flags past a u8 are an assertion, not bits written into the padding", () => {
    const req = { external: true, sync: false } as const;
    expect(() => encodeRecord({ type: "append", ...req, messages: [{ uid: 1, flags: 1 }, { uid: 2, flags: 0x100 }] })).toThrow(/does not fit a u8 field/);
    expect(() => encodeRecord({ type: "append", ...req, messages: [{ uid: 1, flags: -1 }] })).toThrow(/does not fit a u8 field/);
  });
});
