import { describe, expect, it } from "vitest";
import {
  addMaildirKeyword,
  formatMaildirKeywords,
  maildirKeywordIndex,
  maildirKeywordLetters,
  maildirKeywordNames,
  parseMaildirKeywords,
} from "../../../../src/drivers/maildir/keywords-file.js";

describe("dovecot-keywords", () => {
  it("reads and re-encodes a file Dovecot wrote", () => {
    const text = "0 $Label1\n1 foo\n2 bar\n";
    const kw = parseMaildirKeywords(text);
    expect([...kw]).toEqual(["$Label1", "foo", "bar"]);
    expect(formatMaildirKeywords(kw)).toBe(text);
  });

  it("skips what Dovecot skips", () => {
    const kw = parseMaildirKeywords("nospace\n26 toohigh\n-1 neg\n3 \n5 five\n5 FIVE\nx zero\n7 torn");
    expect(kw[0]).toBe("zero"); // atoi("x") is 0
    expect(kw[5]).toBe("FIVE");
    expect(kw[3]).toBeUndefined();
    expect(kw[7]).toBeUndefined();
    expect(kw.length).toBe(6);
    expect(formatMaildirKeywords(kw)).toBe("0 zero\n5 FIVE\n");
  });

  it("maps names and letters, with unknown-<n> for letters without a name", () => {
    const kw = parseMaildirKeywords("0 $Label1\n2 bar\n");
    expect(maildirKeywordIndex(kw, "BAR")).toBe(2);
    expect(maildirKeywordIndex(kw, "foo")).toBeUndefined();
    expect(maildirKeywordNames(kw, [0, 1, 2])).toEqual(["$Label1", "unknown-1", "bar"]);
    expect(maildirKeywordLetters(kw, ["bar", "nope", "$label1"])).toBe("ca");
  });

  it("adds a keyword at the first free letter, up to 26", () => {
    let kw = parseMaildirKeywords("0 a\n2 c\n");
    const r = addMaildirKeyword(kw, "b");
    expect(r.index).toBe(1);
    expect(addMaildirKeyword(r.keywords, "B").index).toBe(1);
    kw = Array.from({ length: 26 }, (_, i) => `k${i}`);
    expect(addMaildirKeyword(kw, "new").index).toBeUndefined();
  });
});
