import { describe, expect, it } from "vitest";
import { applyTransaction } from "../../../src/projections/apply.js";
import { recentCount } from "../../../src/projections/read.js";
import { emptyIndexMap } from "../../../src/projections/state.js";
import { LogBuilder, R } from "./log-builder.js";

/** first_recent_uid is at offset 48 of the base header. */
const FIRST_RECENT_UID = 48;

describe("recentCount (STATUS RECENT: messages with first_recent_uid ≤ uid < next_uid)", () => {
  it("counts every message while first_recent_uid is 1, none in an empty mailbox", () => {
    const b = new LogBuilder();
    const s0 = emptyIndexMap();
    expect(recentCount(s0)).toBe(0);
    const s1 = applyTransaction(s0, b.tx(R.append([1, 2, 3])));
    expect(recentCount(s1)).toBe(3);
  });

  it("counts only messages at or above first_recent_uid, and not expunged ones", () => {
    const b = new LogBuilder();
    let s = applyTransaction(emptyIndexMap(), b.tx(R.append([1, 2, 3])));
    s = applyTransaction(s, b.tx(R.headerU32(FIRST_RECENT_UID, 3)));
    expect(recentCount(s)).toBe(1);
    s = applyTransaction(s, b.tx(R.append([5, 7])));
    expect(recentCount(s)).toBe(3);
    s = applyTransaction(s, b.tx(R.expunge([[5, 5]])));
    expect(recentCount(s)).toBe(2);
    s = applyTransaction(s, b.tx(R.headerU32(FIRST_RECENT_UID, 8)));
    expect(recentCount(s)).toBe(0);
  });
});
