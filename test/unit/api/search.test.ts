import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MailFlag } from "../../../src/log/types.js";
import { applyTransaction, replay } from "../../../src/projections/apply.js";
import { emptyIndexMap } from "../../../src/projections/state.js";
import { FLAG_KEYS, searchRanges, searchUids, type SearchQuery } from "../../../src/api/search.js";
import { toRanges } from "../../../src/api/uid-ranges.js";
import { LogBuilder, R } from "../projections/log-builder.js";

/** uids 1, 2, 3, 5, 8; \Seen on 2 and 5, \Flagged on 5, keyword Work on 3 and 8. */
function mailbox() {
  const b = new LogBuilder();
  let s = replay([b.tx(R.append([1, 2, 3, 5, 8]))], emptyIndexMap());
  s = applyTransaction(s, b.tx(R.flags(2, 2, MailFlag.SEEN, 0)));
  s = applyTransaction(s, b.tx(R.flags(5, 5, MailFlag.SEEN | MailFlag.FLAGGED, 0)));
  s = applyTransaction(s, b.tx(R.keyword("add", "Work", [[3, 3], [8, 8]])));
  return s;
}

const STAR = 0xffffffff;

describe("searchUids (doveadm's search query subset)", () => {
  const s = mailbox();
  const cases: Array<[string, SearchQuery, number[]]> = [
    ["all", [{ type: "all" }], [1, 2, 3, 5, 8]],
    ["uid 2:5", [{ type: "uid", ranges: [{ uid1: 2, uid2: 5 }] }], [2, 3, 5]],
    ["uid 4:*", [{ type: "uid", ranges: [{ uid1: 4, uid2: STAR }] }], [5, 8]],
    ["sequence 2,4:*", [{ type: "seq", ranges: [{ uid1: 2, uid2: 2 }, { uid1: 4, uid2: STAR }] }], [2, 5, 8]],
    ["seen", [{ type: "flag", ...FLAG_KEYS.seen }], [2, 5]],
    ["unseen flagged", [{ type: "flag", ...FLAG_KEYS.unseen }, { type: "flag", ...FLAG_KEYS.flagged }], []],
    ["keyword work (case-insensitive)", [{ type: "keyword", name: "work", set: true }], [3, 8]],
    ["not keyword Work", [{ type: "not", key: { type: "keyword", name: "Work", set: true } }], [1, 2, 5]],
    ["or seen keyword Work", [{ type: "or", keys: [{ type: "flag", ...FLAG_KEYS.seen }, { type: "keyword", name: "Work", set: true }] }], [2, 3, 5, 8]],
    ["seen uid 3:*", [{ type: "flag", ...FLAG_KEYS.seen }, { type: "uid", ranges: [{ uid1: 3, uid2: STAR }] }], [5]],
    ["uid 4 (no such message)", [{ type: "uid", ranges: [{ uid1: 4, uid2: 4 }] }], []],
    ["uid 9:20 (past the last)", [{ type: "uid", ranges: [{ uid1: 9, uid2: 20 }] }], []],
    ["uid 20:4 (reversed)", [{ type: "uid", ranges: [{ uid1: 20, uid2: 4 }] }], [5, 8]],
    ["uid 1,8 keyword Work", [{ type: "uid", ranges: [{ uid1: 1, uid2: 1 }, { uid1: 8, uid2: 8 }] }, { type: "keyword", name: "Work", set: true }], [8]],
    ["sequence 6:9 (past the count)", [{ type: "seq", ranges: [{ uid1: 6, uid2: 9 }] }], []],
    ["uid 2:5 sequence 4:*", [{ type: "uid", ranges: [{ uid1: 2, uid2: 5 }] }, { type: "seq", ranges: [{ uid1: 4, uid2: STAR }] }], [5]],
    ["not uid 2:5", [{ type: "not", key: { type: "uid", ranges: [{ uid1: 2, uid2: 5 }] } }], [1, 8]],
  ];
  for (const [label, query, uids] of cases) it(label, () => expect(searchUids(s, query)).toEqual(uids));

  // A transaction acts on the messages its ranges hold: those must be exactly the ones searchUids finds.
  const existing = [1, 2, 3, 5, 8];
  for (const [label, query, uids] of cases) {
    it(`searchRanges: ${label}`, () => {
      const ranges = searchRanges(s, query);
      expect(existing.filter((uid) => ranges.some((r) => uid >= r.uid1 && uid <= r.uid2))).toEqual(uids);
      // As toRanges gives them, except that `all` and one uid or sequence range give one range over
      // the messages found (gaps of expunged uids included).
      const oneRange = label === "all" || /^(uid|sequence) [^ ,]+( \(.*\))?$/.test(label);
      expect(ranges).toEqual(oneRange && uids.length > 0 ? [{ uid1: uids[0], uid2: uids.at(-1) }] : toRanges(uids));
    });
  }
});

describe("searchUids with uid and sequence keys (property)", () => {
  const uids = [1, 2, 3, 5, 8];
  const s = mailbox();
  const value = fc.oneof(fc.integer({ min: 0, max: 10 }), fc.constant(STAR));
  const ranges = fc.array(fc.record({ uid1: value, uid2: value }), { maxLength: 3 });
  const key = fc.record({ type: fc.constantFrom("uid" as const, "seq" as const), ranges });
  const inRanges = (v: number, rs: Array<{ uid1: number; uid2: number }>, highest: number) =>
    rs.some((r) => {
      const a = r.uid1 === STAR ? highest : r.uid1;
      const b = r.uid2 === STAR ? highest : r.uid2;
      return v >= Math.min(a, b) && v <= Math.max(a, b);
    });
  it("finds exactly the messages every key names, whatever rows the keys reach", () => {
    fc.assert(fc.property(fc.array(key, { minLength: 1, maxLength: 3 }), (query) => {
      const want = uids.filter((uid, i) => query.every((k) => (k.type === "uid" ? inRanges(uid, k.ranges, 8) : inRanges(i + 1, k.ranges, uids.length))));
      expect(searchUids(s, query)).toEqual(want);
    }), { numRuns: 500 });
  });
});
