import { describe, expect, it } from "vitest";
import { emptyOutcome, syncRecords } from "../../../../src/drivers/maildir/sync-records.js";
import { emptyIndexMap } from "../../../../src/projections/state.js";

describe("Maildir sync records", () => {
  it("are ordered as Dovecot exports them, merge adjacent messages into ranges, and are all EXTERNAL", () => {
    const o = emptyOutcome();
    o.uidValidity = 42;
    o.appends.push({ uid: 7, flags: 8, keywords: ["k"] }, { uid: 8, flags: 0, keywords: ["k"] });
    o.flagReplaces.push({ seq: 1, uid: 1, add: 8, remove: 0x17 }, { seq: 2, uid: 3, add: 8, remove: 0x17 }, { seq: 4, uid: 5, add: 0, remove: 0x1f });
    o.keywordChanges.push({ seq: 2, uid: 3, name: "k", add: false });
    o.expunges.push(6);
    o.nextUid = 10;
    const records = syncRecords(emptyIndexMap(), o);
    expect(records.map((r) => r.type)).toEqual(["header-update", "append", "flag-update", "keyword-update", "keyword-update", "expunge-guid", "header-update"]);
    expect(records.every((r) => r.external)).toBe(true);
    const flags = records.find((r) => r.type === "flag-update");
    expect(flags?.type === "flag-update" && flags.updates.map((u) => [u.uid1, u.uid2, u.addFlags, u.removeFlags])).toEqual([[1, 3, 8, 0x17], [5, 5, 0, 0x1f]]);
    const kw = records.filter((r) => r.type === "keyword-update");
    expect(kw.map((r) => r.type === "keyword-update" && [r.modifyType, r.ranges])).toEqual([["add", [{ uid1: 7, uid2: 8 }]], ["remove", [{ uid1: 3, uid2: 3 }]]]);
  });
});
