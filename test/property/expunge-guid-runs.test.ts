/**
 * EXPUNGE_GUID entries naming runs of consecutive uids are found with two
 * lookups per run (apply-messages.ts rowRangesOfUids), others row by row:
 * against a model that removes every named uid on its own, over stores
 * spanning several 1,024-record leaves, with gaps (a run crossing a gap
 * must not take the rows around it), repeats, any order and uids the store
 * does not have.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { replay } from "../../src/projections/apply.js";
import { getHeader, messageCount, uidAt } from "../../src/projections/read.js";
import { emptyIndexMap } from "../../src/projections/state.js";
import { HDR, LogBuilder, R } from "../unit/projections/log-builder.js";

const scenario = fc.record({
  // Uid steps from one message to the next: mostly 1, sometimes a gap.
  steps: fc.array(fc.oneof({ weight: 8, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 2, max: 4 }) }), { minLength: 1030, maxLength: 2600, size: "max" }),
  // Runs of expunged uids: from the uid of the index-th message on, this many consecutive uids.
  runs: fc.array(fc.record({ from: fc.nat({ max: 2600 }), length: fc.integer({ min: 1, max: 1500 }) }), { minLength: 1, maxLength: 5 }),
  shuffled: fc.boolean(),
});

describe("EXPUNGE_GUID runs of consecutive uids", () => {
  it("remove the same rows as removing each uid alone (property)", () => {
    fc.assert(fc.property(scenario, ({ steps, runs, shuffled }) => {
      const uids: number[] = [];
      let uid = 0;
      for (const s of steps) uids.push((uid += s));
      const named: number[] = [];
      for (const run of runs) {
        const first = uids[run.from % uids.length];
        // Consecutive uids, gaps of the store included, past the last uid too.
        for (let u = first; u < first + run.length; u++) named.push(u);
      }
      if (shuffled) named.reverse();
      const b = new LogBuilder();
      const state = replay([b.tx(R.headerU32(HDR.uidValidity, 1), R.append(uids)), b.tx(R.expungeGuid(named))], emptyIndexMap());
      const gone = new Set(named);
      const left = uids.filter((u) => !gone.has(u));
      expect(messageCount(state)).toBe(left.length);
      expect(Array.from({ length: left.length }, (_, i) => uidAt(state, i + 1))).toEqual(left);
      expect(getHeader(state).messagesCount).toBe(left.length);
    }), { numRuns: 40 });
  });
});
