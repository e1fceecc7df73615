import fc from "fast-check";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { encodeTransaction } from "../../../src/log/encode-file.js";
import { decodeLogHeader, encodeLogHeader } from "../../../src/log/header.js";
import { scanTransactions } from "../../../src/log/file.js";
import { acquireLogFile, LazyLogBytes, releaseLogFile } from "../../../src/log/shared-file.js";
import type { LogRecord, LogTransaction } from "../../../src/log/types.js";
import { logTransaction } from "../../helpers/log-arbitraries.js";

const int = { external: false, sync: false };

function logOf(initialModseq: bigint, transactions: ReadonlyArray<{ records: LogRecord[]; framed?: boolean }>): Uint8Array {
  const header = { indexId: 0x65000000, fileSeq: 1, prevFileSeq: 0, prevFileOffset: 0, createStamp: 0x65000000, initialModseq };
  return Buffer.concat([encodeLogHeader(header), ...transactions.map((t) => encodeTransaction(t.records, t.framed))]);
}

function scan(bytes: Uint8Array, skimBefore?: number, fill?: (start: number, end: number) => void): LogTransaction[] {
  const seen: LogTransaction[] = [];
  scanTransactions(bytes, decodeLogHeader(bytes, "t.log"), "t.log", (tx) => void seen.push(tx), undefined, { skimBefore, fill });
  return seen;
}

/**
 * A scan over a copy of `bytes` that holds only what the scan asked fill() for,
 * exactly (no rounding to pages as LazyLogBytes does): a byte read without asking is 0.
 */
function scanSparse(bytes: Uint8Array, skimBefore: number): { seen: LogTransaction[]; asked: number } {
  const sparse = new Uint8Array(bytes.length);
  sparse.set(bytes.subarray(0, decodeLogHeader(bytes, "t.log").hdrSize));
  let asked = 0;
  const seen = scan(sparse, skimBefore, (start, end) => {
    sparse.set(bytes.subarray(start, end), start);
    asked += Math.max(0, Math.min(end, bytes.length) - start);
  });
  return { seen, asked };
}

/** What a skimming scan must hand over: the plain scan's transactions, those ending by `skimBefore` without entries. */
function expected(plain: LogTransaction[], skimBefore: number): LogTransaction[] {
  return plain.map((tx) => (tx.end.offset <= skimBefore ? { ...tx, entries: [] } : tx));
}

/** A log of up to 8 generated transactions, its plain scan, and a cut at the end of one of them. */
const skimCases = fc
  .record({
    txs: fc.array(fc.record({ records: logTransaction, framed: fc.boolean() }), { minLength: 1, maxLength: 8 }),
    initialModseq: fc.constantFrom(0n, 1n, 41n),
    cut: fc.nat(),
  })
  .map(({ txs, initialModseq, cut }) => {
    // A transaction of several records without a boundary is several transactions: keep those with one record unframed only.
    const bytes = logOf(initialModseq, txs.map((t) => ({ records: t.records, framed: t.framed || t.records.length > 1 })));
    const plain = scan(bytes);
    return { bytes, plain, skimBefore: plain[cut % plain.length].end.offset };
  });

describe("skimming scan (scanTransactions with skimBefore)", () => {
  it("gives every transaction the plain scan's modseq and bounds, and decodes those after the skimmed part alike (property)", () => {
    fc.assert(fc.property(skimCases, ({ bytes, plain, skimBefore }) => {
      expect(scan(bytes, skimBefore)).toEqual(expected(plain, skimBefore));
    }), { numRuns: 300 });
  });

  it("reads only through fill(): a scan over the ranges it asked for alone equals the plain one (property)", () => {
    fc.assert(fc.property(skimCases, ({ bytes, plain, skimBefore }) => {
      // Not even the part after the cut is there beforehand (streamLog reads that whole): the scan must ask for it too.
      expect(scanSparse(bytes, skimBefore).seen).toEqual(expected(plain, skimBefore));
    }), { numRuns: 300 });
  });

  it("skims a log of large appends reading their headers only, from the file through LazyLogBytes", () => {
    const messages = (from: number) => Array.from({ length: 2000 }, (_, i) => ({ uid: from + i, flags: 0 }));
    const bytes = logOf(1n, [
      { records: [{ type: "append", ...int, messages: messages(1) }] },
      { records: [{ type: "append", ...int, messages: messages(2001) }], framed: true },
      { records: [{ type: "flag-update", ...int, updates: [{ uid1: 1, uid2: 9, addFlags: 8, removeFlags: 0, modseqIncFlag: 0 }] }] },
      { records: [{ type: "append", ...int, messages: messages(4001) }] },
    ]);
    const plain = scan(bytes);
    const end = plain.at(-1)!.end.offset;
    expect(scanSparse(bytes, end).asked).toBeLessThan(200);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "scan-skim-"));
    try {
      const file = path.join(dir, "dovecot.index.log");
      fs.writeFileSync(file, bytes);
      const shared = acquireLogFile(file);
      try {
        const lazy = new LazyLogBytes(shared, bytes.length);
        lazy.fill(0, 64);
        const seen = scan(lazy.bytes, end, (start, stop) => lazy.fill(start, stop));
        expect(seen).toEqual(expected(plain, end));
        // The middle of the second append (past the pages its header and the first record's end share) was never read.
        const middle = plain[1].position.offset + 6_000;
        expect(bytes.subarray(middle, middle + 4096).some((b) => b !== 0)).toBe(true);
        expect(lazy.bytes.subarray(middle, middle + 4096).every((b) => b === 0)).toBe(true);
      } finally {
        releaseLogFile(shared);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("counts flag updates by their flags, modseq updates by their values, and keeps an unframed intro for the EXT_REC_UPDATE after the cut", () => {
    const intro = { type: "ext-intro" as const, ...int, intros: [{ extId: 0xffffffff, resetId: 0, hdrSize: 0, recordSize: 4, recordAlign: 4, flags: 0, name: "x" }] };
    const bytes = logOf(1n, [
      { records: [{ type: "append", ...int, messages: [{ uid: 1, flags: 0 }, { uid: 2, flags: 0 }] }] },
      // Internal only (no visible flag, no modseq inc flag): the modseq stays.
      { records: [{ type: "flag-update", ...int, updates: [{ uid1: 1, uid2: 2, addFlags: 0x40, removeFlags: 0, modseqIncFlag: 0 }] }] },
      { records: [{ type: "flag-update", ...int, updates: [{ uid1: 1, uid2: 1, addFlags: 8, removeFlags: 0, modseqIncFlag: 0 }] }] },
      { records: [{ type: "modseq-update", ...int, updates: [{ uid: 0, modseq: 40n }] }] },
      { records: [{ type: "expunge", external: true, sync: false, ranges: [{ uid1: 2, uid2: 2 }] }] },
      { records: [intro] },
      { records: [{ type: "ext-rec", ...int, recordSize: 4, updates: [{ uid: 1, data: Uint8Array.of(1, 2, 3, 4) }] }] },
    ]);
    const plain = scan(bytes);
    expect(plain.map((tx) => tx.modseq)).toEqual([2n, 2n, 3n, 40n, 41n, 41n, 41n]);
    for (const tx of plain) expect(scan(bytes, tx.end.offset)).toEqual(expected(plain, tx.end.offset));
  });
});
