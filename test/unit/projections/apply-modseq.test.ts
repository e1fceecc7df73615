import { describe, expect, it } from "vitest";
import { LogCorruptedError } from "../../../src/shared/errors.js";
import { MailFlag } from "../../../src/log/types.js";
import { applyEntry, applyTransaction, replay } from "../../../src/projections/apply.js";
import { extension, extensionHeader, highestModseq, lookupUid } from "../../../src/projections/read.js";
import { emptyIndexMap, type IndexMapState } from "../../../src/projections/state.js";
import { enableModseq, LogBuilder, R } from "./log-builder.js";

function modseqHeader(s: IndexMapState): [bigint, number, number] {
  const d = extensionHeader(extension(s, "modseq")!);
  const v = new DataView(d.buffer, d.byteOffset, 16);
  return [v.getBigUint64(0, true), v.getUint32(8, true), v.getUint32(12, true)];
}

const modseqs = (s: IndexMapState, uids: number[]) => uids.map((u) => lookupUid(s, u)!.modseq);

describe("modseqs without the modseq extension", () => {
  it("every message reports the log's highest modseq", () => {
    const b = new LogBuilder();
    const s = replay([b.tx(R.append([1, 2])), b.tx(R.flags(1, 1, MailFlag.SEEN, 0))], emptyIndexMap());
    expect(highestModseq(s)).toBe(3n);
    expect(modseqs(s, [1, 2])).toEqual([3n, 3n]);
  });

  it("MODSEQ_UPDATE of an existing message is corruption; of uid 0 or an unknown uid is not", () => {
    const b = new LogBuilder();
    const s = applyTransaction(emptyIndexMap(), b.tx(R.append([1])));
    expect(() => applyEntry(s, b.entry(R.modseqUpdate([[1, 9n]])))).toThrow(LogCorruptedError);
    expect(() => applyEntry(s, b.entry(R.modseqUpdate([[0, 9n], [5, 9n]])))).not.toThrow();
  });
});

describe("modseq extension (transaction-log.md §8)", () => {
  it("enabling it gives every existing message the header's highest_modseq (observed: 8 for a message last changed at 7)", () => {
    const b = new LogBuilder();
    let s = replay([b.tx(R.append([1, 2])), b.tx(R.flags(1, 1, MailFlag.SEEN, 0))], emptyIndexMap());
    const enable = b.tx(...enableModseq(b.modseq));
    s = applyTransaction(s, enable);
    expect(modseqs(s, [1, 2])).toEqual([3n, 3n]);
    expect(modseqHeader(s)).toEqual([3n, enable.end.fileSeq, enable.end.offset]);
    expect(highestModseq(s)).toBe(3n);
  });

  it("appends, flag and keyword changes set the record's modseq; internal flag updates do not", () => {
    const b = new LogBuilder();
    let s = replay([b.tx(...enableModseq(1n)), b.tx(R.append([1, 2, 3]))], emptyIndexMap());
    expect(modseqs(s, [1, 2, 3])).toEqual([2n, 2n, 2n]);
    s = applyTransaction(s, b.tx(R.flags(2, 2, MailFlag.FLAGGED, 0)));
    expect(modseqs(s, [1, 2, 3])).toEqual([2n, 3n, 2n]);
    // Even when nothing changes, a non-internal update bumps the modseq.
    s = applyTransaction(s, b.tx(R.flags(3, 3, 0, MailFlag.SEEN)));
    expect(modseqs(s, [1, 2, 3])).toEqual([2n, 3n, 4n]);
    // Internal (backend-only) flag update: no modseq.
    s = applyTransaction(s, b.tx(R.flags(1, 1, MailFlag.DIRTY, 0)));
    expect(modseqs(s, [1, 2, 3])).toEqual([2n, 3n, 4n]);
    s = applyTransaction(s, b.tx(R.keyword("add", "k", [[1, 1]])));
    expect(modseqs(s, [1, 2, 3])).toEqual([5n, 3n, 4n]);
    s = applyTransaction(s, b.tx(R.keywordReset([[3, 3]])));
    expect(modseqs(s, [1, 2, 3])).toEqual([5n, 3n, 6n]);
    const last = b.tx(R.expunge([[2, 2]]));
    s = applyTransaction(s, last);
    expect(modseqHeader(s)).toEqual([7n, 2, last.end.offset]);
    expect(highestModseq(s)).toBe(7n);
  });

  it("MODSEQ_UPDATE raises, never lowers; uid 0 raises only the highest", () => {
    const b = new LogBuilder();
    let s = replay([b.tx(...enableModseq(1n)), b.tx(R.append([1, 2]))], emptyIndexMap());
    s = applyTransaction(s, b.tx(R.modseqUpdate([[1, 10n], [2, 1n]])));
    expect(modseqs(s, [1, 2])).toEqual([10n, 2n]);
    s = applyTransaction(s, b.tx(R.modseqUpdate([[0, 50n]])));
    expect(highestModseq(s)).toBe(50n);
    expect(modseqs(s, [1, 2])).toEqual([10n, 2n]);
  });

  it("an attribute update raises the highest modseq only", () => {
    const b = new LogBuilder();
    let s = replay([b.tx(...enableModseq(1n)), b.tx(R.append([1]))], emptyIndexMap());
    s = applyTransaction(s, b.tx(R.attribute()));
    expect(highestModseq(s)).toBe(3n);
    expect(modseqs(s, [1])).toEqual([2n]);
  });
});
