/**
 * A replay from a reusing scan applies EXT_REC_UPDATE entries in place from
 * the log's bytes; a plain scan decodes them into objects first. Both must
 * give the same state, or the same error (issue #11).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeTransaction } from "../../src/log/encode-file.js";
import { scanTransactions } from "../../src/log/file.js";
import { decodeLogHeader, encodeLogHeader } from "../../src/log/header.js";
import { EXT_ID_BY_NAME, type LogRecord } from "../../src/log/types.js";
import { Replay } from "../../src/projections/apply.js";
import { emptyIndexMap, type IndexMapState } from "../../src/projections/state.js";
import { LogCorruptedError } from "../../src/shared/errors.js";

const header = { indexId: 0x65000000, fileSeq: 1, prevFileSeq: 0, prevFileOffset: 0, createStamp: 0x65000000, initialModseq: 1n };
const int = { external: false, sync: false };

function replayLog(bytes: Uint8Array, reuse: boolean): IndexMapState | LogCorruptedError {
  const h = decodeLogHeader(bytes, "t.log");
  const run = new Replay(emptyIndexMap({ indexId: h.indexId }), [h]);
  try {
    scanTransactions(bytes, h, "t.log", (tx) => run.push(tx), undefined, { reuse });
    return run.finish();
  } catch (err) {
    // Only the log's own complaint is an outcome to compare; anything else fails the test.
    if (err instanceof LogCorruptedError) return err;
    throw err;
  }
}

/** An outcome in comparable form: the error's class, message and place, or the state. */
function outcome(result: IndexMapState | LogCorruptedError): unknown {
  return result instanceof LogCorruptedError ? { error: result.constructor.name, message: result.message, details: { ...result } } : result;
}

/**
 * Messages 1..count appended, then transactions each introducing extension
 * "x" (the first one's size, so later ones may disagree with the field) and
 * updating its records: uids past next_uid, uid 0 and a size the intro does
 * not divide are all possible.
 */
const extRecLog = fc.record({
  count: fc.integer({ min: 1, max: 12 }),
  fieldSize: fc.integer({ min: 1, max: 12 }),
  txs: fc.array(fc.record({
    introSize: fc.integer({ min: 1, max: 12 }),
    records: fc.array(fc.record({
      // Usually the intro's size; otherwise the payload may not be a multiple of its entries.
      sizeDelta: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 4 }) }),
      updates: fc.array(fc.record({
        uid: fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 1, max: 14 }) }, { weight: 1, arbitrary: fc.constant(0) }),
        data: fc.uint8Array({ minLength: 0, maxLength: 16 }),
      }), { minLength: 1, maxLength: 6 }),
    }), { minLength: 1, maxLength: 3 }),
  }), { minLength: 1, maxLength: 3 }),
}).map(({ count, fieldSize, txs }) => {
  const intro = (recordSize: number): LogRecord => ({
    type: "ext-intro", ...int, intros: [{ extId: EXT_ID_BY_NAME, resetId: 0, hdrSize: 0, recordSize, recordAlign: 1, flags: 0, name: "x" }],
  });
  const transactions: LogRecord[][] = [
    [{ type: "append", ...int, messages: Array.from({ length: count }, (_, i) => ({ uid: i + 1, flags: 0 })) }],
    [intro(fieldSize)],
    ...txs.map((tx) => [intro(tx.introSize), ...tx.records.map((r): LogRecord => {
      const recordSize = Math.max(1, tx.introSize + r.sizeDelta);
      return { type: "ext-rec", ...int, recordSize, updates: r.updates.map((u) => ({ uid: u.uid, data: u.data.slice(0, recordSize) })) };
    })]),
  ];
  return Buffer.concat([encodeLogHeader(header), ...transactions.map((t) => encodeTransaction(t))]);
});

describe("EXT_REC_UPDATE applied in place (reusing scan) and from decoded objects", () => {
  it("gives the same state or the same error (property)", () => {
    let errors = 0;
    fc.assert(fc.property(extRecLog, (bytes) => {
      const inPlace = replayLog(bytes, true);
      const objects = replayLog(bytes, false);
      if (objects instanceof LogCorruptedError) errors++;
      expect(outcome(inPlace)).toEqual(outcome(objects));
    }), { numRuns: 400 });
    // The generator must reach the error paths too, or the property proves little about them.
    expect(errors).toBeGreaterThan(20);
  });

  it.each([
    ["uid 0", [{ uid: 0, data: Uint8Array.of(1, 2, 3, 4) }], 4, /ext-rec-update: uid 0/],
    ["a uid past next_uid", [{ uid: 2, data: Uint8Array.of(1, 2, 3, 4) }, { uid: 9, data: Uint8Array.of(5, 6, 7, 8) }], 4, /invalid uid=9/],
    ["a payload its entries do not divide", [{ uid: 1, data: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8) }], 8, /payload size 12 is not a multiple of 8/],
  ])("rejects %s with the same error either way", (_, updates, recordSize, message) => {
    const intro: LogRecord = { type: "ext-intro", ...int, intros: [{ extId: EXT_ID_BY_NAME, resetId: 0, hdrSize: 0, recordSize: 4, recordAlign: 1, flags: 0, name: "x" }] };
    const bytes = Buffer.concat([
      encodeLogHeader(header),
      encodeTransaction([{ type: "append", ...int, messages: [1, 2, 3].map((uid) => ({ uid, flags: 0 })) }]),
      encodeTransaction([intro, { type: "ext-rec", ...int, recordSize, updates }]),
    ]);
    const inPlace = replayLog(bytes, true);
    expect(inPlace).toBeInstanceOf(LogCorruptedError);
    expect((inPlace as Error).message).toMatch(message);
    expect(outcome(inPlace)).toEqual(outcome(replayLog(bytes, false)));
  });
});
