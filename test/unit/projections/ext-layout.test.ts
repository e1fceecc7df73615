import { describe, expect, it } from "vitest";
import { layoutRecord } from "../../../src/projections/ext-layout.js";

const hdrOnly = (recordAlign = 0) => ({ recordSize: 0, recordAlign });
const field = (recordSize: number, recordAlign: number) => ({ recordSize, recordAlign });

describe("layoutRecord (index-file.md §5.1)", () => {
  it("is the bare 8-byte record without extensions", () => {
    expect(layoutRecord([])).toEqual({ offsets: [], recordSize: 8 });
  });

  it("places sdbox's cache after two header-only extensions at offset 8, record 12", () => {
    // dbox-hdr, hdr-pop3-uidl, cache (observed sdbox index).
    expect(layoutRecord([hdrOnly(), hdrOnly(), field(4, 4)])).toEqual({ offsets: [0, 0, 8], recordSize: 12 });
  });

  it("rounds the record to a header-only extension's alignment (hdr-vsize, align 8)", () => {
    expect(layoutRecord([hdrOnly(), hdrOnly(), field(4, 4), hdrOnly(8)])).toEqual({ offsets: [0, 0, 8, 0], recordSize: 16 });
  });

  it("puts keywords at 5, modseq at 8, cache at 16 (observed record size 24)", () => {
    // ext order: cache, keywords, modseq
    expect(layoutRecord([field(4, 4), field(2, 1), field(8, 8)])).toEqual({ offsets: [16, 5, 8], recordSize: 24 });
  });

  it("takes the largest alignment first and keeps extension order among equals", () => {
    const { offsets } = layoutRecord([field(2, 2), field(4, 4), field(2, 2), field(1, 1)]);
    // offset 5: only align 1 fits → [3]@5; 6: align 2 → [0]@6; 8: align 4 → [1]@8; 12: [2]@12
    expect(offsets).toEqual([6, 8, 12, 5]);
  });

  it("skips to the next multiple of the smallest unplaced alignment when nothing fits", () => {
    const { offsets, recordSize } = layoutRecord([field(8, 8), field(4, 4)]);
    // offset 5 fits nothing: advance to 8 (min align 4) → modseq-like @8, then @16
    expect(offsets).toEqual([8, 16]);
    expect(recordSize).toBe(24);
  });
});
