/**
 * EXT_REC_UPDATE's fold against a model that writes each entry on its own:
 * stores crossing 1,024-row leaves, with expunged holes, runs and single
 * entries, repeats, an update narrower than the field (the rest stays
 * zero), and the same update twice (which must leave the records as they
 * are). Replaces comparing the in-place fold with the decoded-objects one,
 * which since both share the fold compared it with itself.
 * Rerun a failure with PROP_SEED=<seed> (printed with it); PROP_RUNS for more runs.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyTransaction, replay } from "../../src/projections/apply.js";
import { extRecordAt } from "../../src/projections/read.js";
import { emptyIndexMap } from "../../src/projections/state.js";
import { LogBuilder, R } from "../unit/projections/log-builder.js";

const SEED = Number(process.env.PROP_SEED ?? 20261208);
const RUNS = Number(process.env.PROP_RUNS ?? 200);
const MAX_UID = 2600;

const scenario = fc.record({
  count: fc.integer({ min: 1, max: MAX_UID }),
  // Expunged: from this uid, this many more.
  holes: fc.array(fc.tuple(fc.integer({ min: 1, max: MAX_UID }), fc.integer({ min: 0, max: 1200 })), { maxLength: 4 }),
  fieldSize: fc.integer({ min: 1, max: 12 }),
  // The update's record size is the field's less this (at least 1).
  narrower: fc.integer({ min: 0, max: 3 }),
  pieces: fc.array(fc.record({
    start: fc.integer({ min: 1, max: MAX_UID }),
    length: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 1500 })),
    // 0: all zero bytes (what the rows hold already).
    fill: fc.integer({ min: 0, max: 3 }),
  }), { minLength: 1, maxLength: 5 }),
  twice: fc.boolean(),
});

describe("EXT_REC_UPDATE against a per-entry model", () => {
  it("sets each live message's field as its last entry says (property)", () => {
    fc.assert(fc.property(scenario, ({ count, holes, fieldSize, narrower, pieces, twice }) => {
      const size = Math.max(1, fieldSize - narrower);
      const b = new LogBuilder();
      const uids = Array.from({ length: count }, (_, i) => i + 1);
      let state = replay([b.tx(R.append(uids)), b.tx(R.intro({ name: "x", recordSize: fieldSize, recordAlign: 1 }))], emptyIndexMap({ indexId: 1 }));
      const live = new Set(uids);
      for (const [from, length] of holes) {
        if (from > count) continue;
        const to = Math.min(count, from + length);
        state = applyTransaction(state, b.tx(R.expunge([[from, to]])));
        for (let u = from; u <= to; u++) live.delete(u);
      }
      const entries: Array<[number, number[]]> = [];
      for (const p of pieces) {
        for (let u = p.start; u < p.start + p.length && u <= count; u++) {
          entries.push([u, Array.from({ length: size }, (_, k) => (p.fill === 0 ? 0 : (u * 7 + k * 13 + p.fill) & 0xff))]);
        }
      }
      if (entries.length === 0) return;
      // The model: every live message's field zero, then each entry in turn (an expunged uid's skipped).
      const model = new Map<number, number[]>();
      for (const u of live) model.set(u, new Array(fieldSize).fill(0));
      for (const [u, data] of entries) if (model.has(u)) model.set(u, [...data, ...new Array(fieldSize - size).fill(0)]);

      const update = () => b.tx(R.intro({ name: "x", recordSize: size, recordAlign: 1 }), R.extRec(size, entries));
      let after = applyTransaction(state, update());
      if (twice) {
        const again = applyTransaction(after, update());
        const distinct = new Set(entries.map(([u]) => u)).size === entries.length;
        if (distinct) expect(again.records, `an update writing what is there changes no records (PROP_SEED=${SEED})`).toBe(after.records);
        after = again;
      }
      [...live].sort((x, y) => x - y).forEach((u, i) => {
        expect(Array.from(extRecordAt(after, i + 1, "x") ?? []), `uid ${u} (PROP_SEED=${SEED})`).toEqual(model.get(u));
      });
    }), { numRuns: RUNS, seed: SEED });
  });
});
