import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { prepareAppend } from "../../../src/log/append.js";
import { ByteWriter } from "../../../src/log/bytes.js";
import { encodeTransactionInto } from "../../../src/log/encode-file.js";
import { scanTransactions } from "../../../src/log/file.js";
import { decodesToItself } from "../../../src/log/codec.js";
import { packedExtRecUpdates } from "../../../src/log/records/ext-rec-update.js";
import type { LogFileHeader, LogRecord, LogTransaction } from "../../../src/log/types.js";
import { tailOffsetUpdate } from "../../../src/projections/tail-offset.js";
import { LogCorruptedError } from "../../../src/shared/errors.js";
import { logRecord, logTransaction } from "../../helpers/log-arbitraries.js";

const header: LogFileHeader = {
  majorVersion: 1, minorVersion: 3, hdrSize: 40, indexId: 0x65000000, fileSeq: 7, prevFileSeq: 6,
  prevFileOffset: 0, createStamp: 0x65000000, initialModseq: 1n, compatFlags: 1,
};

const uid = fc.integer({ min: 1, max: 0xffffffff });
const flags = fc.record({ external: fc.boolean(), sync: fc.boolean() });

/** A mass expunge's records, now and then with a field the decoder would refuse or change. */
const expungeGuid: fc.Arbitrary<LogRecord> = fc.tuple(flags, fc.array(fc.record({
  uid: fc.oneof({ weight: 20, arbitrary: uid }, { weight: 1, arbitrary: fc.constantFrom(0, 2 ** 32, 1.5, -1) }),
  guid: fc.oneof(
    { weight: 20, arbitrary: fc.uint8Array({ minLength: 16, maxLength: 16 }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 0, maxLength: 20 }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b)) },
  ),
}), { minLength: 1, maxLength: 40 })).map(([f, expunges]) => ({ type: "expunge-guid", ...f, expunges }));

const atomicInc: fc.Arbitrary<LogRecord> = fc.tuple(flags, fc.array(fc.record({
  uid: fc.oneof({ weight: 20, arbitrary: uid }, { weight: 1, arbitrary: fc.constantFrom(0, 2 ** 32 + 3) }),
  diff: fc.oneof({ weight: 20, arbitrary: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) }, { weight: 1, arbitrary: fc.constantFrom(2 ** 31, -(2 ** 31) - 1, 0.5) }),
}), { minLength: 1, maxLength: 40 })).map(([f, updates]) => ({ type: "ext-atomic-inc", ...f, updates }));

/**
 * A rebuild's or import's EXT_REC_UPDATE after its intro, now and then with
 * a field the decoder would refuse, cut or pad (uid 0, data not of the
 * intro's size or a Buffer, a record size other than the intro's).
 */
const extRec: fc.Arbitrary<LogRecord[]> = fc.tuple(
  flags,
  fc.integer({ min: 1, max: 24 }),
  fc.oneof({ weight: 20, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) }),
).chain(([f, introSize, skew]) => fc.array(fc.record({
  uid: fc.oneof({ weight: 20, arbitrary: uid }, { weight: 1, arbitrary: fc.constantFrom(0, 2 ** 32 + 3) }),
  data: fc.oneof(
    { weight: 20, arbitrary: fc.uint8Array({ minLength: introSize, maxLength: introSize }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 0, maxLength: 30 }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: introSize, maxLength: introSize }).map((b) => Buffer.from(b)) },
  ),
}), { minLength: 1, maxLength: 40 }).map((updates): LogRecord[] => [
  { type: "ext-intro", ...f, intros: [{ extId: 0xffffffff, resetId: 0, hdrSize: 0, recordSize: introSize, recordAlign: 1, flags: 1, name: "mass-ext" }] },
  { type: "ext-rec", ...f, recordSize: Math.max(1, introSize + skew), updates },
]));

/** The same EXT_REC_UPDATEs built packed (a rebuild's), now and then with uid 0 (the decoder refuses it). */
const packedExtRec: fc.Arbitrary<LogRecord[]> = fc.tuple(flags, fc.integer({ min: 1, max: 24 })).chain(([f, size]) => fc.array(fc.record({
  uid: fc.oneof({ weight: 20, arbitrary: uid }, { weight: 1, arbitrary: fc.constant(0) }),
  data: fc.uint8Array({ minLength: size, maxLength: size }),
}), { minLength: 1, maxLength: 40 }).map((entries): LogRecord[] => [
  { type: "ext-intro", ...f, intros: [{ extId: 0xffffffff, resetId: 0, hdrSize: 0, recordSize: size, recordAlign: 1, flags: 1, name: "mass-ext" }] },
  { type: "ext-rec", ...f, recordSize: size, updates: [], packed: packedExtRecUpdates(entries, size, (e) => e.uid, (out, at, e) => out.set(e.data, at)) },
]));

/** Records with packed EXT_REC_UPDATE entries as the decoder gives them (an object per entry): what both forms must agree on. */
function unpacked(txs: readonly LogTransaction[]): LogTransaction[] {
  return txs.map((tx) => ({
    ...tx,
    entries: tx.entries.map((e) => {
      const r = e.record;
      if (r.type !== "ext-rec" || r.packed === undefined) return e;
      const p = r.packed;
      const updates = Array.from({ length: p.count }, (_, i) => {
        const at = p.start + i * p.entrySize;
        return { uid: p.view.getUint32(at, true), data: p.bytes.slice(at + 4, at + 4 + r.recordSize) };
      });
      const { packed: _packed, ...rest } = r;
      return { ...e, record: { ...rest, updates } as LogRecord };
    }),
  }));
}

/** fc.record's objects have no prototype; the engine's records and the decoder's have Object's. */
function plain(r: LogRecord): LogRecord {
  if (r.type === "expunge-guid") return { ...r, expunges: r.expunges.map((e) => ({ ...e })) };
  if (r.type === "append") return { ...r, messages: r.messages.map((m) => ({ ...m })) };
  if (r.type === "ext-atomic-inc" || (r.type === "ext-rec" && r.packed === undefined)) return { ...r, updates: r.updates.map((u) => ({ ...u })) } as LogRecord;
  return r;
}

/** Transactions of any records, the mass ones mixed in, all sharing one sync flag as a real transaction does. */
const transaction = fc.tuple(
  logTransaction,
  fc.array(fc.oneof(expungeGuid.map((r) => [r]), atomicInc.map((r) => [r]), logRecord.map((r) => [r]), extRec, packedExtRec), { maxLength: 3 }),
).map(([base, more]) => {
  const sync = base[0].sync;
  return [...base, ...more.flat()].map((r) => plain(r.type === "ext-rec" ? r : { ...r, sync }));
});

/** What appending did before records could stand for their bytes: every record decoded from the written bytes. */
function decodedFromBytes(bytes: Uint8Array, at: { offset: number; modseq: bigint }): { decoded: LogTransaction[]; syncOffset: number; modseq: bigint } {
  const decoded: LogTransaction[] = [];
  const scan = scanTransactions(bytes, header, "t.log", (tx) => decoded.push(tx), { ...at, delta: at.offset });
  return { decoded, ...scan };
}

function outcome(fn: () => unknown): { value?: unknown; error?: unknown } {
  try {
    return { value: fn() };
  } catch (error) {
    if (error instanceof LogCorruptedError || error instanceof RangeError) return { error: error.constructor };
    throw error;
  }
}

describe("own records: folded as made instead of decoded back", () => {
  it("an append's transactions equal a decode of its bytes, and the bytes are those the encoder writes (property)", () => {
    fc.assert(
      fc.property(
        fc.array(transaction, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 10, max: 100_000 }).map((n) => n * 4),
        fc.bigInt({ min: 1n, max: 1n << 40n }),
        fc.boolean(),
        (txs, offset, modseq, withTail) => {
          const cursor = { header, syncOffset: offset, modseq };
          const got = outcome(() => prepareAppend(cursor, txs, "t.log", withTail ? tailOffsetUpdate : undefined));
          const reference = outcome(() => {
            const out = new ByteWriter(64);
            for (const t of txs) encodeTransactionInto(t, out);
            if (withTail) {
              const size = (() => { const o = new ByteWriter(64); encodeTransactionInto([tailOffsetUpdate(0)], o); return o.length; })();
              encodeTransactionInto([tailOffsetUpdate(offset + out.length + size)], out);
            }
            const bytes = out.result().slice();
            return { bytes, ...decodedFromBytes(bytes, { offset, modseq }) };
          });
          if (reference.error !== undefined || got.error !== undefined) {
            expect(got.error).toBe(reference.error);
            return;
          }
          const a = got.value as ReturnType<typeof prepareAppend>;
          const b = reference.value as { bytes: Uint8Array; decoded: LogTransaction[]; syncOffset: number; modseq: bigint };
          expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
          expect(unpacked(a.decoded)).toStrictEqual(unpacked(b.decoded));
          expect(a.end).toEqual({ header, syncOffset: b.syncOffset, modseq: b.modseq });
        },
      ),
      { seed: 0x0e11, numRuns: 400 },
    );
  });

  it("only records already in their on-disk form decode to themselves", () => {
    const guid = new Uint8Array(16).fill(7);
    const base = { external: true, sync: false };
    expect(decodesToItself({ type: "expunge-guid", ...base, expunges: [{ uid: 5, guid }] })).toBe(true);
    expect(decodesToItself({ type: "expunge-guid", ...base, expunges: [{ uid: 0, guid }] })).toBe(false);
    expect(decodesToItself({ type: "expunge-guid", ...base, expunges: [{ uid: 5, guid: guid.subarray(1) }] })).toBe(false);
    expect(decodesToItself({ type: "expunge-guid", ...base, expunges: [{ uid: 5, guid: Buffer.from(guid) }] })).toBe(false);
    expect(decodesToItself({ type: "ext-atomic-inc", ...base, updates: [{ uid: 0xffffffff, diff: -(2 ** 31) }] })).toBe(true);
    expect(decodesToItself({ type: "ext-atomic-inc", ...base, updates: [{ uid: 3, diff: 2 ** 31 }] })).toBe(false);
    expect(decodesToItself({ type: "ext-atomic-inc", ...base, updates: [{ uid: 2 ** 32, diff: 1 }] })).toBe(false);
    expect(decodesToItself({ type: "ext-atomic-inc", sync: false, updates: [{ uid: 3, diff: 1 }] } as unknown as LogRecord)).toBe(false);
    expect(decodesToItself({ type: "append", ...base, messages: [{ uid: 1, flags: 0 }, { uid: 0xffffffff, flags: 0xff }] })).toBe(true);
    expect(decodesToItself({ type: "append", ...base, messages: [{ uid: 2 ** 32, flags: 0 }] })).toBe(false);
    expect(decodesToItself({ type: "append", ...base, messages: [{ uid: 1, flags: 0x100 }] })).toBe(false);
    expect(decodesToItself({ type: "append", ...base, messages: [{ uid: 1, flags: 1.5 }] })).toBe(false);
    const data = new Uint8Array(8).fill(3);
    const extRec = (recordSize: number, updates: Array<{ uid: number; data: Uint8Array }>): LogRecord => ({ type: "ext-rec", ...base, recordSize, updates });
    expect(decodesToItself(extRec(8, [{ uid: 9, data }]), 8)).toBe(true);
    const packed = (uids: number[]): LogRecord => ({ type: "ext-rec", ...base, recordSize: 8, updates: [], packed: packedExtRecUpdates(uids, 8, (u) => u, (out, at) => out.set(data, at)) });
    expect(decodesToItself(packed([9, 10]), 8)).toBe(true);
    expect(decodesToItself(packed([9, 0]), 8)).toBe(false);
    expect(decodesToItself(packed([9]), 6)).toBe(false);
    expect(decodesToItself(extRec(8, [{ uid: 9, data }]))).toBe(false);
    expect(decodesToItself(extRec(8, [{ uid: 9, data }]), 4)).toBe(false);
    expect(decodesToItself(extRec(4, [{ uid: 9, data }]), 4)).toBe(false);
    expect(decodesToItself(extRec(8, [{ uid: 0, data }]), 8)).toBe(false);
    expect(decodesToItself(extRec(8, [{ uid: 9, data: Buffer.from(data) }]), 8)).toBe(false);
    expect(decodesToItself({ type: "ext-rec", ...base, recordSize: 8, updates: [{ uid: 9, data }], packed: undefined }, 8)).toBe(false);
  });
});
