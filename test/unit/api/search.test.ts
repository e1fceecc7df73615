import { describe, expect, it } from "vitest";
import { MailFlag } from "../../../src/log/types.js";
import { applyTransaction, replay } from "../../../src/projections/apply.js";
import { emptyIndexMap } from "../../../src/projections/state.js";
import { FLAG_KEYS, searchUids, type SearchQuery } from "../../../src/api/search.js";
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
  ];
  for (const [label, query, uids] of cases) it(label, () => expect(searchUids(s, query)).toEqual(uids));
});
