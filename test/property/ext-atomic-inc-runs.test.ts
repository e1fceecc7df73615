/**
 * EXT_ATOMIC_INC entries walked over consecutive rows a leaf at a time (an
 * mdbox expunge decrements one map refcount per message) give what applying
 * each entry as a record of its own gives: the same fields, or the same
 * error. Stores span several 1,024-record leaves, with gaps; records mix
 * runs, uids in gaps, repeats, uids past next_uid, diffs of 0 and diffs that
 * wrap past zero or the field's maximum; fields of 1, 2, 4 and 8 bytes
 * (and 3, which Dovecot refuses).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LogCorruptedError } from "../../src/shared/errors.js";
import type { IndexMapState } from "../../src/projections/state.js";
import { applyTransaction, replay } from "../../src/projections/apply.js";
import { extRecordAt } from "../../src/projections/read.js";
import { emptyIndexMap } from "../../src/projections/state.js";
import { HDR, LogBuilder, R } from "../unit/projections/log-builder.js";

const SEED = Number(process.env.SEED ?? Date.now() % 0x7fffffff);

// Mostly small; a run's wild diffs go past zero, the field's maximum or the diff's.
const smallDiff = fc.integer({ min: -3, max: 3 });
const wildDiff = fc.oneof(smallDiff, fc.constantFrom(255, -255, 65535, -65536, 2 ** 31 - 1, -(2 ** 31)));

const scenario = fc.record({
  // Uid steps from one message to the next: mostly 1, sometimes a gap.
  steps: fc.array(fc.oneof({ weight: 8, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 2, max: 4 }) }), { minLength: 1030, maxLength: 2600, size: "max" }),
  size: fc.oneof({ weight: 12, arbitrary: fc.constantFrom(1, 2, 2, 4, 8) }, { weight: 1, arbitrary: fc.constant(3) }),
  // Starting values: mostly small, some at the field's maximum (incs past it overflow).
  atMax: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 40 }) }),
  runs: fc.array(
    fc.record({
      from: fc.nat({ max: 2600 }),
      length: fc.integer({ min: 1, max: 1500 }),
      // 0: the run's uids; 1: some of them in a gap; 2: one repeated; 3: one past next_uid.
      twist: fc.constantFrom(0, 0, 1, 2, 3),
      at: fc.nat({ max: 1499 }),
      diffs: fc.oneof({ weight: 4, arbitrary: fc.array(smallDiff, { minLength: 1, maxLength: 8 }) }, { weight: 1, arbitrary: fc.array(wildDiff, { minLength: 1, maxLength: 8 }) }),
    }),
    { minLength: 1, maxLength: 4 },
  ),
});

/** Every message's field, or the error's message without the record's position (the two folds' records lie apart). */
function fields(fold: () => IndexMapState, uids: readonly number[]): string[] | string {
  let state: IndexMapState;
  try {
    state = fold();
  } catch (err) {
    if (err instanceof LogCorruptedError) return err.message.replace(/^file_seq \d+, offset \d+: /, "");
    throw err;
  }
  return uids.map((_, i) => Array.from(extRecordAt(state, i + 1, "c") ?? []).join(","));
}

describe("EXT_ATOMIC_INC runs of consecutive uids", () => {
  it(`fold as each entry applied alone does (property, SEED=${SEED})`, () => {
    fc.assert(
      fc.property(scenario, ({ steps, size, atMax, runs }) => {
        const uids: number[] = [];
        let uid = 0;
        for (const s of steps) uids.push((uid += s));
        const b = new LogBuilder();
        const intro = () => R.intro({ name: "c", recordSize: size, recordAlign: 1 });
        const max = 2 ** (Math.min(size, 4) * 8) - 1;
        const start = [
          b.tx(R.headerU32(HDR.uidValidity, 1), R.append(uids)),
          b.tx(intro(), R.extRec(size, uids.map((u, i) => [u, i % 41 < atMax ? new Array(size).fill(0xff) : [20 + (i % 5)]] as const))),
        ];
        const base = replay(start);
        const entries: Array<[number, number]> = [];
        for (const run of runs) {
          const first = run.from % uids.length;
          for (let i = first, n = 0; i < Math.min(uids.length, first + run.length); i++, n++) {
            let u = uids[i];
            if (run.twist === 1 && n % 7 === 3 && i + 1 < uids.length && uids[i + 1] > u + 1) u++;
            if (run.twist === 3 && n === run.at) u = uids[uids.length - 1] + 1 + (n % 3);
            entries.push([u, run.diffs[n % run.diffs.length]]);
            if (run.twist === 2 && n === run.at) entries.push([u, run.diffs[0]]);
          }
        }
        const record = b.tx(intro(), R.atomicInc(entries));
        const alone = b.tx(intro(), ...entries.map((e) => R.atomicInc([e])));
        const expected = fields(() => applyTransaction(base, alone), uids);
        const before = fields(() => base, uids);
        expect(fields(() => applyTransaction(base, record), uids), `SEED=${SEED} size=${size} max=${max}`).toEqual(expected);
        // A replay folds its batch under one token: leaves it copied are changed in place.
        expect(fields(() => replay([...start, record]), uids), `SEED=${SEED} (replay)`).toEqual(expected);
        expect(fields(() => base, uids), `SEED=${SEED}: the state folded into is unchanged`).toEqual(before);
      }),
      { numRuns: 40, seed: SEED },
    );
  });
});
