import fc from "fast-check";
import type { LogRecord, LogRecordBody, UidRange } from "../../src/log/types.js";

const uid = fc.integer({ min: 1, max: 0xfffffff0 });
const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
const name = fc.stringMatching(/^[A-Za-z0-9_$-]{1,20}$/);

/** Sorted, non-overlapping, non-empty UID ranges. */
export const uidRanges: fc.Arbitrary<UidRange[]> = fc
  .uniqueArray(fc.integer({ min: 1, max: 100000 }), { minLength: 2, maxLength: 12 })
  .map((xs) => {
    const sorted = xs.sort((a, b) => a - b);
    const ranges: UidRange[] = [];
    for (let i = 0; i + 1 < sorted.length; i += 2) ranges.push({ uid1: sorted[i], uid2: sorted[i + 1] });
    return ranges;
  })
  .filter((r) => r.length > 0);

const patches = (maxOffset: number) =>
  fc.array(fc.record({ offset: fc.integer({ min: 0, max: maxOffset }), data: bytes(0, 12).map((b) => b.subarray(0, b.length & ~3)) }), { minLength: 1, maxLength: 4 })
    .chain((ps) => bytes(1, 7).map((last) => [...ps, { offset: 0, data: last }]));

export const recordBody: fc.Arbitrary<LogRecordBody> = fc.oneof(
  uidRanges.map((ranges) => ({ type: "expunge" as const, ranges })),
  fc.array(fc.record({ uid, flags: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 5 }).map((messages) => ({ type: "append" as const, messages })),
  uidRanges.chain((ranges) =>
    fc.tuple(...ranges.map(() => fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 1 })))).map((fl) => ({
      type: "flag-update" as const,
      updates: ranges.map((r, i) => ({ ...r, addFlags: fl[i][0], removeFlags: fl[i][1], modseqIncFlag: fl[i][2] })),
    })),
  ),
  patches(116).map((p) => ({ type: "header-update" as const, patches: p })),
  fc.array(fc.record({
    extId: fc.oneof(fc.constant(0xffffffff), fc.integer({ min: 0, max: 20 })),
    resetId: fc.nat(), hdrSize: fc.nat({ max: 1 << 20 }), recordSize: fc.nat({ max: 32767 }),
    recordAlign: fc.constantFrom(0, 1, 2, 4, 8), flags: fc.constantFrom(0, 1), name,
  }), { minLength: 1, maxLength: 2 }).map((intros) => ({ type: "ext-intro" as const, intros })),
  fc.record({ newResetId: fc.nat(), preserveData: fc.constantFrom(0, 1) }).map((r) => ({ type: "ext-reset" as const, ...r })),
  patches(1000).map((p) => ({ type: "ext-hdr" as const, patches: p })),
  patches(100000).map((p) => ({ type: "ext-hdr32" as const, patches: p })),
  fc.integer({ min: 1, max: 24 }).chain((recordSize) =>
    fc.array(fc.record({ uid, data: bytes(recordSize, recordSize) }), { minLength: 1, maxLength: 4 }).map((updates) => ({ type: "ext-rec" as const, recordSize, updates })),
  ),
  fc.record({ modifyType: fc.constantFrom("add" as const, "remove" as const), name, ranges: uidRanges }).map((r) => ({ type: "keyword-update" as const, ...r })),
  uidRanges.map((ranges) => ({ type: "keyword-reset" as const, ranges })),
  fc.array(fc.record({ uid, diff: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) }), { minLength: 1, maxLength: 4 }).map((updates) => ({ type: "ext-atomic-inc" as const, updates })),
  fc.array(fc.record({ uid, guid: bytes(16, 16) }), { minLength: 1, maxLength: 4 }).map((expunges) => ({ type: "expunge-guid" as const, expunges })),
  fc.array(fc.record({ uid: fc.nat(), modseq: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }), { minLength: 1, maxLength: 4 }).map((updates) => ({ type: "modseq-update" as const, updates })),
  fc.constant({ type: "index-deleted" as const }),
  fc.constant({ type: "index-undeleted" as const }),
  fc.array(fc.record({ op: fc.constantFrom("+" as const, "-" as const), scope: fc.constantFrom("p" as const, "s" as const), key: name, timestamp: fc.nat(), valueLength: fc.nat() }), { minLength: 1, maxLength: 3 })
    .map((cs) => ({ type: "attribute-update" as const, changes: cs.map((c) => (c.op === "+" ? c : { op: c.op, scope: c.scope, key: c.key, timestamp: c.timestamp })) })),
);

export const logRecord: fc.Arbitrary<LogRecord> = fc
  .tuple(recordBody, fc.boolean(), fc.boolean())
  .map(([body, external, sync]) => ({ ...body, external, sync }) as LogRecord);

/** A transaction whose ext-rec-updates are preceded by a matching ext-intro. */
export const logTransaction: fc.Arbitrary<LogRecord[]> = fc.array(logRecord, { minLength: 1, maxLength: 5 }).map((records) => {
  const out: LogRecord[] = [];
  for (const r of records) {
    if (r.type === "ext-rec") {
      out.push({ type: "ext-intro", external: r.external, sync: r.sync, intros: [{ extId: 0xffffffff, resetId: 0, hdrSize: 0, recordSize: r.recordSize, recordAlign: 1, flags: 1, name: "test-ext" }] });
    }
    out.push(r);
  }
  const sync = out[0].sync;
  return out.map((r) => ({ ...r, sync }));
});
