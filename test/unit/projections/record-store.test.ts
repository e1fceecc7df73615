import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LEAF_RECORDS, RecordStore, SEGMENT_LEAVES } from "../../../src/projections/record-store.js";

const RS = 16;

/** A plain model: one [uid, flags, extra byte at offset 8] per record. */
type Row = [number, number, number];

function rows(store: RecordStore): Row[] {
  const out: Row[] = [];
  for (let i = 0; i < store.count; i++) {
    const r = store.row(i);
    out.push([r.words[r.offset >>> 2], r.bytes[r.offset + 4], r.bytes[r.offset + 8]]);
  }
  return out;
}

function build(uids: number[], token = {}): RecordStore {
  const ed = RecordStore.empty(RS).edit(token);
  // In runs of changing lengths (1, 8, 57, 400, …), so runs start and end inside leaves and span them.
  for (let i = 0, k = 1; i < uids.length; i += k, k = ((k * 7) % 1500) + 1) {
    ed.appendMessages(uids.slice(i, i + k).map((uid) => ({ uid, flags: uid & 0x1f })));
  }
  return ed.finish();
}

describe("RecordStore", () => {
  it("appends across leaf and segment boundaries and finds every uid", () => {
    const n = LEAF_RECORDS * SEGMENT_LEAVES + LEAF_RECORDS + 3;
    const uids = Array.from({ length: n }, (_, i) => 2 * i + 1);
    const store = build(uids);
    expect(store.count).toBe(n);
    for (const i of [0, 1, LEAF_RECORDS - 1, LEAF_RECORDS, n - LEAF_RECORDS - 4, n - 1]) {
      expect(store.uidAt(i)).toBe(uids[i]);
      expect(store.indexOfUid(uids[i])).toBe(i);
      expect(store.indexOfUid(uids[i] + 1)).toBe(-1);
      expect(store.lowerBound(uids[i] + 1)).toBe(i + 1);
    }
    expect(store.rangeOfUids(2, 6)).toEqual([1, 2]);
    expect(store.rangeOfUids(2 * n + 5, 0xffffffff)).toBeUndefined();
    expect(store.rangeOfUids(1, 0xffffffff)).toEqual([0, n - 1]);
  });

  it("leaves the old store unchanged when an editor changes a copy", () => {
    const a = build([1, 2, 3, 4, 5]);
    const before = rows(a);
    const ed = a.edit({});
    ed.forRange(1, 3, (cur, from, to) => {
      cur.writable();
      for (let i = from; i <= to; i++) cur.bytes[i * RS + 8] = 0xee;
    });
    ed.appendMessages([{ uid: 9, flags: 1 }]);
    ed.expunge([[0, 0]]);
    const b = ed.finish();
    expect(rows(a)).toEqual(before);
    expect(rows(b)).toEqual([
      [2, 2, 0xee],
      [3, 3, 0xee],
      [4, 4, 0xee],
      [5, 5, 0],
      [9, 1, 0],
    ]);
  });

  it("returns the same store when nothing was written", () => {
    const a = build([1, 2, 3]);
    const ed = a.edit({});
    ed.forRange(0, 2, () => {});
    ed.clearField(8, 4);
    expect(ed.finish()).toBe(a);
  });

  it("relayouts every record: base 8 bytes and moved fields", () => {
    const ed = build([1, 2]).edit({});
    ed.forRange(0, 1, (cur, from, to) => {
      cur.writable();
      for (let i = from; i <= to; i++) cur.bytes[i * RS + 8] = 40 + i;
    });
    ed.relayout(24, [{ from: 8, to: 16, size: 1 }]);
    const s = ed.finish();
    expect(s.recordSize).toBe(24);
    expect([0, 1].map((i) => [s.uidAt(i), s.row(i).bytes[s.row(i).offset + 16], s.row(i).bytes[s.row(i).offset + 8]])).toEqual([
      [1, 40, 0],
      [2, 41, 0],
    ]);
  });

  it("fromRows slices rows into leaves", () => {
    const bytes = new Uint8Array(8 + 3000 * RS);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < 3000; i++) view.setUint32(8 + i * RS, i + 10, true);
    const s = RecordStore.fromRows(bytes, 8, 3000, RS);
    expect(s.count).toBe(3000);
    expect(s.uidAt(2999)).toBe(3009);
    expect(s.indexOfUid(1034)).toBe(1024);
    let total = 0;
    s.forEachChunk((chunk) => (total += chunk.length));
    expect(total).toBe(3000 * RS);
  });

  it("matches an array model under random appends, edits and expunges (fast-check)", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("append" as const), n: fc.integer({ min: 1, max: 3000 }) }),
      fc.record({ kind: fc.constant("set" as const), a: fc.nat(), b: fc.nat(), v: fc.integer({ min: 1, max: 255 }) }),
      fc.record({
        kind: fc.constant("expunge" as const),
        cuts: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 2000 })), { maxLength: 4 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 12 }), fc.boolean(), (ops, sameToken) => {
        let store = RecordStore.empty(RS);
        let model: Row[] = [];
        let nextUid = 1;
        const history: Array<[RecordStore, Row[]]> = [];
        const token = {};
        // Lookups against the model, on the editor as it changes: each one also leaves the
        // store's last-found position behind, which an append or expunge must not let go stale.
        const lookupsMatch = (ed: { indexOfUid(uid: number): number; lowerBound(uid: number): number }, picks: number) => {
          for (let k = 0; k < picks && model.length > 0; k++) {
            const i = (k * 7919 + model.length) % model.length;
            expect(ed.indexOfUid(model[i][0])).toBe(i);
            // A uid just below an existing one: found or not, lowerBound is that row's index or the one before.
            const below = model[i][0] - 1;
            expect(ed.lowerBound(below)).toBe(i > 0 && model[i - 1][0] === below ? i - 1 : i);
          }
        };
        for (const o of ops) {
          const ed = store.edit(sameToken ? token : {});
          lookupsMatch(ed, 3);
          if (o.kind === "append") {
            const run: Array<{ uid: number; flags: number }> = [];
            for (let k = 0; k < o.n; k++, nextUid++) {
              run.push({ uid: nextUid, flags: nextUid & 0x1f });
              model.push([nextUid, nextUid & 0x1f, 0]);
            }
            ed.appendMessages(run);
          } else if (o.kind === "set" && model.length > 0) {
            const a = o.a % model.length;
            const b = a + (o.b % (model.length - a));
            ed.forRange(a, b, (cur, from, to) => {
              cur.writable();
              for (let i = from; i <= to; i++) cur.bytes[i * RS + 8] = o.v;
            });
            model = model.map((r, i) => (i >= a && i <= b ? [r[0], r[1], o.v] : r));
          } else if (o.kind === "expunge" && model.length > 0) {
            const marks = new Set<number>();
            for (const [start, len] of o.cuts) {
              const s = start % model.length;
              for (let i = s; i < Math.min(model.length, s + len); i++) marks.add(i);
            }
            const sorted = [...marks].sort((x, y) => x - y);
            const ranges: Array<[number, number]> = [];
            for (const i of sorted) {
              const last = ranges[ranges.length - 1];
              if (last && last[1] === i - 1) last[1] = i;
              else ranges.push([i, i]);
            }
            ed.expunge(ranges);
            model = model.filter((_, i) => !marks.has(i));
          }
          lookupsMatch(ed, 5);
          store = ed.finish();
          lookupsMatch(store, 5);
          if (!sameToken) history.push([store, model.map((r) => [...r] as Row)]);
        }
        expect(store.count).toBe(model.length);
        expect(rows(store)).toEqual(model);
        for (const [i, r] of model.entries()) if (i % 97 === 0) expect(store.indexOfUid(r[0])).toBe(i);
        // Persistence: every earlier store still shows exactly what it showed.
        for (const [s, m] of history) expect(rows(s)).toEqual(m);
      }),
      { seed: 0x5eed, numRuns: 60 },
    );
  });

  it("visitUids visits the rows of ascending uids, repeats again, missing ones never, across leaves and segments (fast-check)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: LEAF_RECORDS * SEGMENT_LEAVES + 2 * LEAF_RECORDS }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 3000 })), { maxLength: 4 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 2500 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })), { maxLength: 4 }),
        (n, cuts, picks) => {
          // uids 1, 3, 5…, then a few runs cut out: leaves of every fill, gaps in the uids.
          const ed = RecordStore.empty(RS).edit({});
          ed.appendMessages(Array.from({ length: n }, (_, i) => ({ uid: 2 * i + 1, flags: (2 * i + 1) & 0x1f })));
          const marks = new Set<number>();
          for (const [start, len] of cuts) for (let i = start % Math.max(n, 1); i < Math.min(n, (start % Math.max(n, 1)) + len); i++) marks.add(i);
          const ranges: Array<[number, number]> = [];
          for (const i of [...marks].sort((x, y) => x - y)) {
            const last = ranges[ranges.length - 1];
            if (last && last[1] === i - 1) last[1] = i;
            else ranges.push([i, i]);
          }
          ed.expunge(ranges);
          const store = ed.finish();
          // Runs of every uid from a start (present or not), each uid repeated `times`.
          const wanted: number[] = [];
          for (const [start, len, step, times] of picks) for (let u = 1 + (start % (2 * n + 3)), k = 0; k < len; k++, u += step) for (let t = 0; t < times; t++) wanted.push(u);
          wanted.sort((x, y) => x - y);
          const seen: Array<[number, number, number, number]> = [];
          store.visitUids(wanted, (bytes, words, offset, k, index) => seen.push([k, index, words[offset >>> 2], bytes[offset + 4]]));
          const expected: Array<[number, number, number, number]> = [];
          wanted.forEach((uid, k) => {
            const i = store.indexOfUid(uid);
            if (i >= 0) expected.push([k, i, uid, store.row(i).bytes[store.row(i).offset + 4]]);
          });
          expect(seen).toEqual(expected);
        },
      ),
      { seed: 0x0e1d5, numRuns: 40 },
    );
  });
});
