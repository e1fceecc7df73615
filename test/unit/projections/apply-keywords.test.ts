import { describe, expect, it } from "vitest";
import { applyEntry, applyTransaction, replay } from "../../../src/projections/apply.js";
import { keywordsRecordSize } from "../../../src/projections/apply-keywords.js";
import { extension, extensionHeader, extensions, keywordNames, lookupUid, recordAt } from "../../../src/projections/read.js";
import { emptyIndexMap, type IndexMapState } from "../../../src/projections/state.js";
import { LogBuilder, R } from "./log-builder.js";

function withMessages(b: LogBuilder, uids: number[]): IndexMapState {
  return replay([b.tx(R.intro({ name: "dbox-hdr", hdrSize: 24 })), b.tx(R.append(uids))], emptyIndexMap());
}

const latin1 = (bytes: Uint8Array) => String.fromCharCode(...bytes);

describe("keywords extension growth (index-file.md §6.1)", () => {
  it("the first keyword creates 'keywords' (hdr 148 for $Label1, 2-byte bitmap at 5) with the next ext_id", () => {
    const b = new LogBuilder();
    let s = withMessages(b, [1, 2]);
    s = applyTransaction(s, b.tx(R.keyword("add", "$Label1", [[2, 2]])));
    expect(extensions(s).map((e) => e.name)).toEqual(["dbox-hdr", "keywords"]);
    const kw = extension(s, "keywords")!;
    expect([kw.hdrSize, kw.recordSize, kw.recordAlign, kw.recordOffset, kw.resetId]).toEqual([148, 2, 1, 5, 0]);
    expect(keywordNames(s)).toEqual(["$Label1"]);
    expect(lookupUid(s, 2)!.keywords).toEqual(["$Label1"]);
    expect(lookupUid(s, 1)!.keywords).toEqual([]);
    // A later intro by name continues the numbering after the implicit extension.
    s = applyTransaction(s, b.tx(R.intro({ name: "cache", recordSize: 4, recordAlign: 4 })));
    expect(extensions(s).map((e) => e.name)).toEqual(["dbox-hdr", "keywords", "cache"]);
  });

  it("a second keyword that fits is written in place: hdr_size stays 148", () => {
    const b = new LogBuilder();
    let s = withMessages(b, [1]);
    s = applyTransaction(s, b.tx(R.keyword("add", "$Label1", [[1, 1]]), R.keyword("add", "foo", [[1, 1]])));
    const kw = extension(s, "keywords")!;
    expect(kw.hdrSize).toBe(148);
    const data = extensionHeader(kw);
    const v = new DataView(data.buffer, data.byteOffset);
    expect(v.getUint32(0, true)).toBe(2);
    expect([v.getUint32(4, true), v.getUint32(8, true), v.getUint32(12, true), v.getUint32(16, true)]).toEqual([0, 0, 0, 8]);
    expect(latin1(data.subarray(20, 32))).toBe("$Label1\0foo\0");
    expect([...data.subarray(32)].every((x) => x === 0)).toBe(true);
    expect(recordAt(s, 1)!.keywords).toEqual(["$Label1", "foo"]);
  });

  it("a remove of an unknown name still registers it; names compare case-insensitively", () => {
    const b = new LogBuilder();
    let s = withMessages(b, [1]);
    s = applyTransaction(s, b.tx(R.keyword("remove", "ghost", [[1, 1]])));
    expect(keywordNames(s)).toEqual(["ghost"]);
    s = applyTransaction(s, b.tx(R.keyword("add", "GHOST", [[1, 1]])));
    expect(keywordNames(s)).toEqual(["ghost"]);
    expect(recordAt(s, 1)!.keywords).toEqual(["ghost"]);
    s = applyTransaction(s, b.tx(R.keyword("remove", "Ghost", [[1, 1]])));
    expect(recordAt(s, 1)!.keywords).toEqual([]);
  });

  it("grows header (data + 128) and bitmap together, keeping every bit", () => {
    expect([1, 8, 9, 16, 17, 32, 33].map(keywordsRecordSize)).toEqual([2, 2, 3, 3, 4, 4, 6]);
    const b = new LogBuilder();
    let s = withMessages(b, [1, 2, 3]);
    const names = Array.from({ length: 17 }, (_, i) => `kw${i}`);
    for (const [i, name] of names.entries()) s = applyTransaction(s, b.tx(R.keyword("add", name, [[1 + (i % 3), 1 + (i % 3)]])));
    const kw = extension(s, "keywords")!;
    // The header outgrew 148 bytes at the 12th keyword; the resize then also took the
    // bitmap to keywordsRecordSize(12) = 3 bytes, whose 24 bits still hold keyword 17.
    expect(kw.recordSize).toBe(3);
    const data12 = 4 + 12 * 8 + names.slice(0, 12).reduce((n, x) => n + x.length + 1, 0);
    expect(kw.hdrSize).toBe(((data12 + 3) & ~3) + 128);
    const used = 4 + 17 * 8 + names.reduce((n, x) => n + x.length + 1, 0);
    expect(kw.hdrSize).toBeGreaterThanOrEqual(used);
    for (let uid = 1; uid <= 3; uid++) {
      expect(lookupUid(s, uid)!.keywords).toEqual(names.filter((_, i) => i % 3 === uid - 1));
    }
  });

  it("returns the same state when the bits are already as asked and modseqs are not tracked", () => {
    const b = new LogBuilder();
    const s = applyTransaction(withMessages(b, [1]), b.tx(R.keyword("add", "a", [[1, 1]])));
    expect(applyEntry(s, b.entry(R.keyword("add", "A", [[1, 1]])))).toBe(s);
    expect(applyEntry(s, b.entry(R.keyword("remove", "a", [[5, 9]])))).toBe(s);
  });
});

describe("KEYWORD_RESET", () => {
  it("clears all keywords of the ranges; without a keywords extension it does nothing", () => {
    const b = new LogBuilder();
    let s = withMessages(b, [1, 2]);
    expect(applyEntry(s, b.entry(R.keywordReset([[1, 2]])))).toBe(s);
    s = applyTransaction(s, b.tx(R.keyword("add", "a", [[1, 2]]), R.keyword("add", "b", [[1, 2]])));
    s = applyTransaction(s, b.tx(R.keywordReset([[2, 2]])));
    expect([recordAt(s, 1)!.keywords, recordAt(s, 2)!.keywords]).toEqual([["a", "b"], []]);
  });
});
