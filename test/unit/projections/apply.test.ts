import { describe, expect, it } from "vitest";
import { LogCorruptedError } from "../../../src/shared/errors.js";
import { MailFlag } from "../../../src/log/types.js";
import { applyEntry, applyTransaction, replay } from "../../../src/projections/apply.js";
import { encodeIndexFile } from "../../../src/projections/index-file.js";
import { getHeader, messageCount, position, recordAt } from "../../../src/projections/read.js";
import { emptyIndexMap, type IndexMapState } from "../../../src/projections/state.js";
import { enableModseq, HDR, LogBuilder, R } from "./log-builder.js";

function sample(b: LogBuilder): IndexMapState {
  return replay(
    [
      b.tx(R.intro({ name: "dbox-hdr", hdrSize: 24 }), R.extHdr(0, new Array(24).fill(1)), R.headerU32(HDR.uidValidity, 77)),
      b.tx(R.intro({ name: "cache", recordSize: 4, recordAlign: 4 }), R.extReset(5)),
      b.tx(R.append([1, 2, 3, 4]), R.intro({ extId: 1, resetId: 5, recordSize: 4, recordAlign: 4 }), R.extRec(4, [[1, [1, 0, 0, 0]]])),
      b.tx(R.keyword("add", "a", [[2, 3]])),
      b.tx(R.intro({ extId: 1, resetId: 5, recordSize: 4, recordAlign: 4 }), R.extRec(4, [[4, [4, 0, 0, 0]]])),
    ],
    emptyIndexMap({ indexId: 3 }),
  );
}

describe("applyEntry returns the same state object when nothing changes", () => {
  it.each([
    ["an expunge request", R.expunge([[1, 4]], false)],
    ["an external expunge of unknown uids", R.expunge([[9, 20]])],
    ["a flag update of unknown uids", R.flags(10, 20, MailFlag.SEEN, 0)],
    ["flags already set", R.flags(2, 2, 0, MailFlag.SEEN)],
    ["a keyword already set", R.keyword("add", "a", [[2, 2]])],
    ["a header patch writing the current value", R.headerU32(HDR.uidValidity, 77)],
    ["re-selecting the current extension", R.intro({ extId: 1, resetId: 5, recordSize: 4, recordAlign: 4 })],
    ["an ext-rec update writing the bytes already there", R.extRec(4, [[4, [4, 0, 0, 0]]])],
    ["an INDEX_UNDELETED when not deleted", R.indexUndeleted(false)],
    ["a boundary", { type: "boundary" as const, size: 12, external: true, sync: false }],
    ["an attribute update without the modseq extension", R.attribute()],
  ])("%s", (_, record) => {
    const b = new LogBuilder();
    const s = sample(b);
    // The sample ends with the cache extension selected, as the intro above selects it.
    expect(applyEntry(s, b.entry(record))).toBe(s);
  });
});

describe("immutability", () => {
  it("old states keep their records and header while newer ones change (views hold old states)", () => {
    const b = new LogBuilder();
    const s0 = sample(b);
    const bytes0 = encodeIndexFile(s0);
    let s = s0;
    s = applyTransaction(s, b.tx(R.flags(1, 4, MailFlag.SEEN | MailFlag.FLAGGED, 0)));
    s = applyTransaction(s, b.tx(R.expunge([[2, 2]])));
    s = applyTransaction(s, b.tx(R.append([5, 6])));
    s = applyTransaction(s, b.tx(...enableModseq(9n)));
    expect(encodeIndexFile(s0)).toEqual(bytes0);
    expect(messageCount(s0)).toBe(4);
    expect(recordAt(s0, 1)!.flags).toBe(0);
    expect(messageCount(s)).toBe(5);
    expect(Object.isFrozen(s.header)).toBe(true);
  });

  it("a transaction that fails part-way leaves the input state untouched", () => {
    const b = new LogBuilder();
    const s0 = sample(b);
    const bytes0 = encodeIndexFile(s0);
    const bad = b.tx(R.flags(1, 4, MailFlag.DELETED, 0), R.append([7, 8]), R.append([6]));
    expect(() => applyTransaction(s0, bad)).toThrow(LogCorruptedError);
    expect(encodeIndexFile(s0)).toEqual(bytes0);
  });
});

describe("replay", () => {
  it("equals applying the transactions one by one", () => {
    const b = new LogBuilder();
    const txs = [
      b.tx(R.append([1, 2, 3])),
      b.tx(R.flags(1, 2, MailFlag.SEEN, 0), R.keyword("add", "x", [[2, 3]])),
      b.tx(R.append([4]), R.flags(4, 4, MailFlag.DELETED, 0)),
      b.tx(R.expunge([[1, 1]])),
      b.tx(R.keyword("remove", "x", [[3, 3]]), R.append([5])),
    ];
    const stepwise = txs.reduce(applyTransaction, emptyIndexMap());
    const replayed = replay(txs);
    expect(encodeIndexFile(replayed)).toEqual(encodeIndexFile(stepwise));
    expect(position(replayed)).toEqual(txs[txs.length - 1].end);
    expect(replayed.logModseq).toBe(txs[txs.length - 1].modseq);
  });
});

describe("INDEX_DELETED / INDEX_UNDELETED", () => {
  it("tracks requests and completed deletions", () => {
    const b = new LogBuilder();
    let s = sample(b);
    s = applyTransaction(s, b.tx(R.indexDeleted(false)));
    expect([s.deleteRequested, s.deleted]).toEqual([true, false]);
    s = applyTransaction(s, b.tx(R.indexDeleted(true)));
    expect([s.deleteRequested, s.deleted]).toEqual([false, true]);
    s = applyTransaction(s, b.tx(R.indexUndeleted(true)));
    expect([s.deleteRequested, s.deleted]).toEqual([false, false]);
    expect(getHeader(s).uidValidity).toBe(77);
  });
});
