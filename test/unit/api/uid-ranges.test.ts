import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { toRanges, UidRangeBuilder } from "../../../src/api/uid-ranges.js";

/** The ranges of a set of UIDs: its distinct UIDs (0 dropped) cut where one is not the one before + 1. */
function modelRanges(uids: readonly number[]): Array<{ uid1: number; uid2: number }> {
  const set = [...new Set(uids.filter((u) => u >= 1))].sort((a, b) => a - b);
  const out: Array<{ uid1: number; uid2: number }> = [];
  let start = 0;
  for (let i = 1; i <= set.length; i++) {
    if (i < set.length && set[i] === set[i - 1] + 1) continue;
    out.push({ uid1: set[start], uid2: set[i - 1] });
    start = i;
  }
  return out;
}

describe("UidRangeBuilder", () => {
  it("merges ascending UIDs, repeats and neighbours, into the ranges log records take", () => {
    const b = new UidRangeBuilder();
    expect(b.isEmpty).toBe(true);
    for (const uid of [0, 1, 2, 2, 3, 5, 7, 8, 0xfffffffe]) b.add(uid);
    expect(b.isEmpty).toBe(false);
    expect(b.ranges).toEqual([{ uid1: 1, uid2: 3 }, { uid1: 5, uid2: 5 }, { uid1: 7, uid2: 8 }, { uid1: 0xfffffffe, uid2: 0xfffffffe }]);
  });
  it("gives what toRanges gives and the model for ascending UIDs with repeats", () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 80 }), (raw) => {
      const uids = [...raw].sort((a, b) => a - b);
      const b = new UidRangeBuilder();
      for (const u of uids) b.add(u);
      expect(b.ranges).toEqual(modelRanges(uids));
      expect(b.isEmpty).toBe(b.ranges.length === 0);
    }), { seed: 11 });
  });
});

describe("toRanges", () => {
  it("sorts UIDs in any order and merges them", () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 80 }), (uids) => {
      expect(toRanges(uids)).toEqual(modelRanges(uids));
    }), { seed: 11 });
  });
});
