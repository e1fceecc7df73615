import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeTransaction } from "../../../src/log/encode-file.js";
import { decodeLogHeader, encodeLogHeader } from "../../../src/log/header.js";
import { scanTransactions } from "../../../src/log/file.js";
import { detachTransaction } from "../../../src/log/detach.js";
import { RawFlagUpdate } from "../../../src/log/records/flag-update.js";
import { RawKeywordUpdate } from "../../../src/log/records/keyword-update.js";
import { LogCorruptedError } from "../../../src/shared/errors.js";
import type { LogRecord, LogTransaction } from "../../../src/log/types.js";
import { logTransaction } from "../../helpers/log-arbitraries.js";

const header = { indexId: 0x65000000, fileSeq: 1, prevFileSeq: 0, prevFileOffset: 0, createStamp: 0x65000000, initialModseq: 1n };
const int = { external: false, sync: false };

function logOf(...transactions: LogRecord[][]): Uint8Array {
  return Buffer.concat([encodeLogHeader(header), ...transactions.map((t) => encodeTransaction(t))]);
}

/**
 * Every transaction: a reusing scan's copied with detachTransaction while
 * the callback runs (the scan overwrites it afterwards, and leaves flag,
 * keyword and ext-rec updates in the log's bytes), a plain scan's as it is.
 */
function scan(bytes: Uint8Array, reuse: boolean): LogTransaction[] {
  const seen: LogTransaction[] = [];
  scanTransactions(bytes, decodeLogHeader(bytes, "t.log"), "t.log", (tx) => {
    seen.push(reuse ? detachTransaction(tx) : tx);
  }, undefined, { reuse });
  return seen;
}

describe("reusing scan (scanTransactions with reuse)", () => {
  it("hands out what a plain scan decodes, transaction by transaction (property)", () => {
    fc.assert(fc.property(fc.array(logTransaction, { minLength: 1, maxLength: 8 }), (txs) => {
      const bytes = logOf(...txs);
      expect(scan(bytes, true)).toEqual(scan(bytes, false));
    }), { numRuns: 300 });
  });

  it("gives each entry of a transaction its own record, and names of one length their own strings", () => {
    const bytes = logOf(
      [
        { type: "flag-update", ...int, updates: [{ uid1: 1, uid2: 3, addFlags: 8, removeFlags: 0, modseqIncFlag: 0 }, { uid1: 5, uid2: 5, addFlags: 0, removeFlags: 8, modseqIncFlag: 0 }] },
        { type: "flag-update", ...int, updates: [{ uid1: 2, uid2: 2, addFlags: 4, removeFlags: 0, modseqIncFlag: 1 }] },
        { type: "keyword-update", ...int, modifyType: "add", name: "$Label1", ranges: [{ uid1: 1, uid2: 2 }, { uid1: 4, uid2: 9 }] },
        { type: "keyword-update", ...int, modifyType: "remove", name: "$Label2", ranges: [{ uid1: 3, uid2: 3 }] },
      ],
      [{ type: "keyword-update", ...int, modifyType: "add", name: "$label1", ranges: [{ uid1: 7, uid2: 7 }] }],
    );
    const reused = scan(bytes, true);
    expect(reused).toEqual(scan(bytes, false));
    expect(reused[0].entries.map((e) => e.record.type)).toEqual(["flag-update", "flag-update", "keyword-update", "keyword-update"]);
    expect(reused[1].entries[0].record).toMatchObject({ name: "$label1", ranges: [{ uid1: 7, uid2: 7 }] });
  });

  it("leaves ext-rec entries in the log's bytes, each record of a transaction its own", () => {
    const intro = { type: "ext-intro" as const, ...int, intros: [{ extId: 0xffffffff, resetId: 0, hdrSize: 0, recordSize: 3, recordAlign: 1, flags: 0, name: "x" }] };
    const bytes = logOf([
      intro,
      { type: "ext-rec", ...int, recordSize: 3, updates: [{ uid: 1, data: Uint8Array.of(1, 2, 3) }, { uid: 2, data: Uint8Array.of(4, 5, 6) }] },
      { type: "ext-rec", ...int, recordSize: 3, updates: [{ uid: 7, data: Uint8Array.of(7, 8, 9) }] },
    ]);
    const header = decodeLogHeader(bytes, "t.log");
    scanTransactions(bytes, header, "t.log", (tx) => {
      const [first, second] = tx.entries.slice(1).map((e) => e.record);
      expect(first).not.toBe(second);
      expect(first).toMatchObject({ type: "ext-rec", recordSize: 3, updates: [], packed: { count: 2, entrySize: 8 } });
      expect(second).toMatchObject({ packed: { count: 1, entrySize: 8 } });
    }, undefined, { reuse: true });
    expect(scan(bytes, true)).toEqual(scan(bytes, false));
  });

  it("hands out raw flag and keyword updates that a spread or structuredClone copies without the log's buffer", () => {
    const flags = { type: "flag-update" as const, ...int, updates: [{ uid1: 1, uid2: 3, addFlags: 8, removeFlags: 2, modseqIncFlag: 1 }] };
    const keyword = { type: "keyword-update" as const, ...int, modifyType: "remove" as const, name: "$Label1", ranges: [{ uid1: 2, uid2: 5 }] };
    const bytes = logOf([flags, keyword]);
    const seen: unknown[] = [];
    scanTransactions(bytes, decodeLogHeader(bytes, "t.log"), "t.log", (tx) => {
      const [f, k] = tx.entries.map((e) => e.record);
      expect(f).toBeInstanceOf(RawFlagUpdate);
      expect(k).toBeInstanceOf(RawKeywordUpdate);
      for (const copy of [structuredClone(f), structuredClone(k), { ...f }, { ...k }]) {
        expect(Object.keys(copy)).not.toContain("view");
        expect(Object.values(copy).some((v) => ArrayBuffer.isView(v))).toBe(false);
        seen.push(structuredClone(copy));
      }
    }, undefined, { reuse: true });
    expect(seen).toMatchObject([flags, keyword, flags, keyword]);
  });

  it("still throws LogCorruptedError for a record Dovecot would reject", () => {
    const bytes = logOf([{ type: "flag-update", ...int, updates: [{ uid1: 4, uid2: 4, addFlags: 8, removeFlags: 0, modseqIncFlag: 0 }] }]);
    // uid1 = 0: an invalid range.
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(40 + 8, 0, true);
    expect(() => scan(bytes, true)).toThrow(LogCorruptedError);
    expect(() => scan(bytes, false)).toThrow(LogCorruptedError);
  });
});
