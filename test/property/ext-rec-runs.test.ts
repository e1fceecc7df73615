/**
 * EXT_REC_UPDATE entries found by stepping to the next row when they name one
 * message after another (mailbox open replays an import's entry per message),
 * by a search otherwise: against a model that looks every entry up on its own,
 * over stores spanning several 1,024-record leaves, with gaps, runs, repeats,
 * uids going back and uids the store does not have.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { replay } from "../../src/projections/apply.js";
import { extRecordAt } from "../../src/projections/read.js";
import { emptyIndexMap } from "../../src/projections/state.js";
import { HDR, LogBuilder, R } from "../unit/projections/log-builder.js";

const FIELD = 4;

const scenario = fc.record({
  // Uid steps from one message to the next: mostly 1, sometimes a gap.
  steps: fc.array(fc.oneof({ weight: 8, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 2, max: 4 }) }), { minLength: 1030, maxLength: 2600, size: "max" }),
  // Runs of entries: from the index-th message (or the uid after it), this many rows on.
  runs: fc.array(fc.record({ from: fc.nat({ max: 2600 }), length: fc.integer({ min: 1, max: 1500 }), missing: fc.boolean(), size: fc.integer({ min: 1, max: FIELD }) }), { minLength: 1, maxLength: 6 }),
});

describe("EXT_REC_UPDATE runs of consecutive uids", () => {
  it("set the same fields as looking each entry up alone (property)", () => {
    fc.assert(fc.property(scenario, ({ steps, runs }) => {
      const uids: number[] = [];
      let uid = 0;
      for (const s of steps) uids.push((uid += s));
      const b = new LogBuilder();
      const txs = [b.tx(R.headerU32(HDR.uidValidity, 1), R.append(uids)), b.tx(R.intro({ name: "x", recordSize: FIELD, recordAlign: 1 }))];
      const model = new Map<number, number[]>();
      let value = 0;
      for (const run of runs) {
        const start = run.from % uids.length;
        const entries: Array<[number, number[]]> = [];
        for (let i = start; i < Math.min(uids.length, start + run.length); i++) {
          // A uid in a gap names no message: skipped.
          const inGap = run.missing && i % 7 === 3 && i + 1 < uids.length && uids[i + 1] > uids[i] + 1;
          const u = inGap ? uids[i] + 1 : uids[i];
          const data = Array.from({ length: run.size }, () => (value = (value + 1) % 251) + 1);
          entries.push([u, data]);
        }
        if (entries.length === 0) continue;
        txs.push(b.tx(R.intro({ name: "x", recordSize: run.size, recordAlign: 1 }), R.extRec(run.size, entries)));
        for (const [u, data] of entries) if (uids.includes(u)) model.set(u, [...data, ...new Array(FIELD - data.length).fill(0)]);
      }
      const state = replay(txs, emptyIndexMap());
      uids.forEach((u, i) => {
        expect(Array.from(extRecordAt(state, i + 1, "x") ?? []), `uid ${u}`).toEqual(model.get(u) ?? new Array(FIELD).fill(0));
      });
    }), { numRuns: 30 });
  });
});
