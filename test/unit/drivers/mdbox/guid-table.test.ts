import { describe, expect, it } from "vitest";
import { GuidTable } from "../../../../src/drivers/mdbox/guid-table.js";

/** n GUIDs, some repeated (duplicates share a slot), packed 16 bytes each from `shift` bytes into their buffer. */
function packed(n: number, shift: number): Uint8Array {
  const guids = new Uint8Array(n * 16 + shift).subarray(shift);
  let seed = 12345;
  for (let i = 0; i < n; i++) {
    if (i > 0 && i % 7 === 0) {
      guids.copyWithin(i * 16, (i - 3) * 16, (i - 2) * 16);
      continue;
    }
    for (let k = 0; k < 16; k++) guids[i * 16 + k] = (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
  }
  return guids;
}

describe("GuidTable", () => {
  for (const shift of [0, 1]) {
    it(`slotOfIndex finds the slots slotOf finds, for GUIDs ${shift === 0 ? "word-aligned" : "off word alignment"} in their buffer`, () => {
      const n = 500;
      const guids = packed(n, shift);
      const byIndex = new GuidTable(guids, n);
      const byBytes = new GuidTable(guids, n);
      for (let i = 0; i < n; i++) {
        const slot = byIndex.slotOfIndex(i);
        expect(slot).toBe(byBytes.slotOf(guids, i * 16));
        if (byIndex.indexIn(slot) < 0) {
          byIndex.put(slot, i);
          byBytes.put(slot, i);
        }
        // A copy of the GUID elsewhere finds the same message.
        expect(byIndex.find(guids.slice(i * 16, i * 16 + 16), 0)).toBe(byIndex.indexIn(slot));
      }
      expect(byIndex.find(new Uint8Array(16).fill(0xee), 0)).toBe(-1);
    });
  }
});
