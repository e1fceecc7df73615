/**
 * EXT_ATOMIC_INC entries walked over consecutive rows a leaf at a time (an
 * mdbox expunge decrements one map refcount per message) give what adding
 * each entry on its own gives (a model of Dovecot's rules, entry by entry):
 * the same fields, or the same error. Stores span several 1,024-record
 * leaves, with gaps; records mix runs, uids in gaps, repeats, uids past
 * next_uid, diffs of 0 and diffs that wrap past zero or the field's
 * maximum; fields of 1, 2, 4 and 8 bytes (and 3, which Dovecot refuses).
 * SEED=<n> replays a run; the seed is in the test's name and messages.
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
  atMax: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 })),
  runs: fc.array(
    fc.record({
      from: fc.nat({ max: 2600 }),
      length: fc.integer({ min: 1, max: 1500 }),
      // 0: the run's uids; 1: some of them in a gap; 2: one repeated; 3: one past next_uid; 4: +1 each (past the maximum where a field holds it).
      twist: fc.constantFrom(0, 0, 1, 2, 3, 4),
      at: fc.nat({ max: 1499 }),
      diffs: fc.oneof({ weight: 4, arbitrary: fc.array(smallDiff, { minLength: 1, maxLength: 8 }) }, { weight: 1, arbitrary: fc.array(wildDiff, { minLength: 1, maxLength: 8 }) }),
    }),
    { minLength: 1, maxLength: 4 },
  ),
});

/** Every message's field as a number, or the error's message without the record's position. */
function fields(fold: () => IndexMapState, uids: readonly number[]): bigint[] | string {
  let state: IndexMapState;
  try {
    state = fold();
  } catch (err) {
    if (err instanceof LogCorruptedError) return err.message.replace(/^file_seq \d+, offset \d+: /, "");
    throw err;
  }
  return uids.map((_, i) => (extRecordAt(state, i + 1, "c") ?? new Uint8Array(0)).reduceRight((v, byte) => (v << 8n) | BigInt(byte), 0n));
}

/**
 * The per-entry fold, as Dovecot states it: each entry checked and added on
 * its own, in order (a uid 0 or past next_uid is refused even when no message
 * has it; an unknown uid is skipped; a size other than 1/2/4/8, a diff past
 * the field's maximum, or a sum below zero or past it is corruption).
 */
function perEntry(values: readonly bigint[], uids: readonly number[], entries: ReadonlyArray<readonly [number, number]>, size: number): bigint[] | string {
  const out = [...values];
  const row = new Map(uids.map((u, i) => [u, i]));
  const nextUid = uids[uids.length - 1] + 1;
  const max = (1n << BigInt(size * 8)) - 1n;
  const fail = (what: string) => `ext-atomic-inc: Extension record inc ${what}`;
  for (const [uid, diff] of entries) {
    if (uid === 0 || uid >= nextUid) return fail(`for invalid uid=${uid}`);
    const i = row.get(uid);
    if (i === undefined) continue;
    if (![1, 2, 4, 8].includes(size)) return fail(`with invalid size=${size}`);
    if (BigInt(diff) > max) return fail(`diff=${diff} larger than max value=${max} (uid=${uid})`);
    const value = out[i] + BigInt(diff);
    if (value < 0n) return fail(`drops number below zero (uid=${uid}, diff=${diff}, orig=${out[i]})`);
    if (value > max) return fail(`overflows number (uid=${uid}, diff=${diff}, orig=${out[i]})`);
    out[i] = value;
  }
  return out;
}

describe("EXT_ATOMIC_INC runs of consecutive uids", () => {
  it(`fold as adding each entry on its own does (property, SEED=${SEED})`, () => {
    fc.assert(
      fc.property(scenario, ({ steps, size, atMax, runs }) => {
        const uids: number[] = [];
        let uid = 0;
        for (const s of steps) uids.push((uid += s));
        const b = new LogBuilder();
        const intro = () => R.intro({ name: "c", recordSize: size, recordAlign: 1 });
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
            entries.push([u, run.twist === 4 ? 1 : run.diffs[n % run.diffs.length]]);
            if (run.twist === 2 && n === run.at) entries.push([u, run.diffs[0]]);
          }
        }
        const record = b.tx(intro(), R.atomicInc(entries));
        const before = fields(() => base, uids);
        if (typeof before === "string") throw new Error(before);
        const expected = perEntry(before, uids, entries, size);
        expect(fields(() => applyTransaction(base, record), uids), `SEED=${SEED} size=${size}`).toEqual(expected);
        // A replay folds its batch under one token: leaves it copied are changed in place.
        expect(fields(() => replay([...start, record]), uids), `SEED=${SEED} (replay)`).toEqual(expected);
        expect(fields(() => base, uids), `SEED=${SEED}: the state folded into is unchanged`).toEqual(before);
      }),
      { numRuns: 40, seed: SEED },
    );
  });
});
