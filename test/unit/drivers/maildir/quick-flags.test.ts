import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseMaildirFileName, quickMaildirFlags } from "../../../../src/drivers/maildir/filename.js";

describe("quickMaildirFlags", () => {
  it("reads system flags without parsing, and says -1 when keyword letters need a parse", () => {
    expect(quickMaildirFlags("1.M2P3.h,S=5,W=6")).toBe(0);
    expect(quickMaildirFlags("1.M2P3.h,S=5,W=6:2,")).toBe(0);
    expect(quickMaildirFlags("1.M2P3.h:2,FRS")).toBe(0x0b);
    expect(quickMaildirFlags("1.M2P3.h:2,DPT,extra")).toBe(0x14);
    expect(quickMaildirFlags("1.M2P3.h:2,Sa")).toBe(-1);
    expect(quickMaildirFlags("1.M2P3.h:1,S")).toBe(0);
  });

  it("agrees with parseMaildirFileName on every name without keyword letters", () => {
    fc.assert(fc.property(fc.string({ unit: fc.constantFrom("1", ".", "M", ":", "2", ",", "D", "F", "P", "R", "S", "T", "a", "x", "=") }), (name) => {
      const q = quickMaildirFlags(name);
      const p = parseMaildirFileName(name);
      if (p.keywordIndexes.length > 0) expect(q).toBe(-1);
      else expect(q).toBe(p.flags);
    }), { seed: 4242 });
  });
});
