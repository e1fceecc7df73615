import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  compareMaildirFileNames,
  formatMaildirFileName,
  maildirBaseName,
  maildirFileNameSize,
  maildirFlagLetters,
  parseMaildirFileName,
  setMaildirFileNameFlags,
} from "../../../../src/drivers/maildir/filename.js";
import { MaildirUniqueNames } from "../../../../src/drivers/maildir/unique-name.js";
import { InvalidArgumentError } from "../../../../src/shared/errors.js";
import { MailFlag } from "../../../../src/log/types.js";

const { ANSWERED, FLAGGED, DELETED, SEEN, DRAFT } = MailFlag;

describe("parseMaildirFileName", () => {
  it("reads a name Dovecot wrote", () => {
    expect(parseMaildirFileName("1795342195.M492400P10989.vm,S=118,W=125:2,FSab")).toEqual({
      baseName: "1795342195.M492400P10989.vm,S=118,W=125",
      size: 118,
      vsize: 125,
      info: "2,FSab",
      flags: FLAGGED | SEEN,
      keywordIndexes: [0, 1],
      otherLetters: "",
    });
    expect(parseMaildirFileName("1795426730.M942495P14079.vm,S=31,W=33:2,")).toMatchObject({ flags: 0, keywordIndexes: [], info: "2," });
    expect(parseMaildirFileName("1.M2P3.host")).toEqual({ baseName: "1.M2P3.host", flags: 0, keywordIndexes: [], otherLetters: "" });
  });

  it("takes the base before the first ':' and the info after the last", () => {
    const p = parseMaildirFileName("a:b:2,RTPz,X");
    expect(p.baseName).toBe("a");
    expect(p.info).toBe("2,RTPz,X");
    expect(p.flags).toBe(ANSWERED | DELETED);
    expect(p.keywordIndexes).toEqual([25]);
    expect(p.otherLetters).toBe("P");
    expect(parseMaildirFileName("a:1,S").flags).toBe(0);
  });

  it("reads sizes only when well formed", () => {
    expect(maildirFileNameSize("x,S=12", "S")).toBe(12);
    expect(maildirFileNameSize("x,S=12:2,S", "S")).toBe(12);
    expect(maildirFileNameSize("x,S=12a,W=3", "S")).toBeUndefined();
    expect(maildirFileNameSize("x,W=3,S=4", "W")).toBe(3);
    expect(maildirFileNameSize("x", "W")).toBeUndefined();
    expect(maildirBaseName("x,S=1:2,S")).toBe("x,S=1");
  });
});

describe("setMaildirFileNameFlags", () => {
  it("does what Dovecot's renames did (observed)", () => {
    // flags add '\Seen \Flagged $Label1 foo' on a name without info
    expect(setMaildirFileNameFlags("1795426730.M910978P14072.vm,S=55,W=61", SEEN | FLAGGED, [0, 1])).toBe("1795426730.M910978P14072.vm,S=55,W=61:2,FSab");
    // all flags removed: ':2,' stays
    expect(setMaildirFileNameFlags("b,S=31,W=33:2,Dc", 0, [])).toBe("b,S=31,W=33:2,");
    // unknown P and X kept, R before S, T before X
    expect(setMaildirFileNameFlags("b:2,FPSXab", FLAGGED | SEEN | ANSWERED | DELETED, [0, 1])).toBe("b:2,FPRSTXab");
  });

  it("keeps a further flag set and drops other info versions", () => {
    expect(setMaildirFileNameFlags("b:2,S,xyz", DRAFT)).toBe("b:2,D,xyz");
    expect(setMaildirFileNameFlags("b:1,foo", SEEN)).toBe("b:2,S");
  });

  it("sorts known letters among unknown ones and keeps keywords as one block", () => {
    expect(maildirFlagLetters(DRAFT | SEEN, [3, 0])).toBe("DSad");
    expect(maildirFlagLetters(DRAFT | SEEN | DELETED, [1], "XP")).toBe("DSTXPb");
    expect(maildirFlagLetters(0, [], "1")).toBe("1");
    expect(() => maildirFlagLetters(0, [26])).toThrow(InvalidArgumentError);
  });

  it("round-trips flags and keywords through parse", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x1f }), fc.uniqueArray(fc.integer({ min: 0, max: 25 })), (flags, kws) => {
        const name = setMaildirFileNameFlags("1.M1P1.h,S=1", flags, kws);
        const p = parseMaildirFileName(name);
        expect(p.flags).toBe(flags);
        expect([...p.keywordIndexes].sort((a, b) => a - b)).toEqual([...kws].sort((a, b) => a - b));
        expect(setMaildirFileNameFlags(name, flags, kws)).toBe(name);
      }),
    );
  });
});

describe("formatMaildirFileName", () => {
  it("adds ',S=', ',W=' and an info part only with flags", () => {
    expect(formatMaildirFileName({ baseName: "1.M2P3.vm", size: 118, vsize: 125 })).toBe("1.M2P3.vm,S=118,W=125");
    expect(formatMaildirFileName({ baseName: "1.M2P3.vm", size: 1, flags: SEEN, keywordIndexes: [2] })).toBe("1.M2P3.vm,S=1:2,Sc");
    expect(() => formatMaildirFileName({ baseName: "a/b" })).toThrow(InvalidArgumentError);
    expect(() => formatMaildirFileName({ baseName: "a:b" })).toThrow(InvalidArgumentError);
  });
});

describe("compareMaildirFileNames", () => {
  it("orders by seconds, then microseconds, then base name", () => {
    const names = ["20.M5P1.h", "3.M999P1.h", "20.M40P1.h", "20.M5P0.h", "20.x.h:2,S"];
    expect([...names].sort(compareMaildirFileNames)).toEqual(["3.M999P1.h", "20.M5P0.h", "20.M5P1.h", "20.M40P1.h", "20.x.h:2,S"]);
  });
});

describe("MaildirUniqueNames", () => {
  it("makes Dovecot's names and bumps the microseconds when the clock stands still", () => {
    const g = new MaildirUniqueNames();
    const t = 1795342195_492400;
    expect(g.next({ nowUsecs: t, pid: 10989, hostname: "vm" })).toBe("1795342195.M492400P10989.vm");
    expect(g.next({ nowUsecs: t, pid: 10989, hostname: "vm" })).toBe("1795342195.M492401P10989.vm");
    expect(g.next({ nowUsecs: 1795342195_999999, pid: 1, hostname: "vm" })).toBe("1795342195.M999999P1.vm");
    expect(g.next({ nowUsecs: 1795342195_999999, pid: 1, hostname: "vm" })).toBe("1795342196.M0P1.vm");
    expect(() => g.next({ hostname: "a/b" })).toThrow(InvalidArgumentError);
    expect(() => g.next({ hostname: "a:b" })).toThrow(InvalidArgumentError);
  });

  it("never repeats a name", () => {
    const g = new MaildirUniqueNames();
    const seen = new Set(Array.from({ length: 1000 }, () => g.next({ hostname: "h" })));
    expect(seen.size).toBe(1000);
  });
});
