import { describe, expect, it } from "vitest";
import { formatFromLine, parseFromLine } from "../../../../src/drivers/mbox/from-line.js";

const utc = (y: number, mo: number, d: number, h: number, mi: number, s: number) => Date.UTC(y, mo, d, h, mi, s) / 1000;

describe("From_ lines", () => {
  it("formats Dovecot's line (two spaces, zero-padded day)", () => {
    expect(formatFromLine("oracle@vm", utc(2026, 10, 23, 9, 40, 7), 0)).toBe("From oracle@vm  Mon Nov 23 09:40:07 2026\n");
    expect(formatFromLine("a", utc(2001, 10, 9, 22, 33, 52), 0)).toBe("From a  Fri Nov 09 22:33:52 2001\n");
    expect(formatFromLine("a", utc(2001, 10, 9, 22, 33, 52), 120)).toBe("From a  Sat Nov 10 00:33:52 2001\n");
  });

  it("parses what it formats", () => {
    const t = utc(2026, 10, 23, 9, 40, 7);
    const line = formatFromLine("x@y", t).slice(5, -1);
    expect(parseFromLine(line)).toEqual({ sender: "x@y", receivedTime: t });
  });

  it("accepts Dovecot's variants", () => {
    const t = utc(2001, 10, 29, 22, 33, 52);
    expect(parseFromLine("a Thu Nov 29 22:33:52 2001 +0300")).toEqual({ sender: "a", receivedTime: t - 3 * 3600, tzOffsetMinutes: 180 });
    expect(parseFromLine("a Thu Nov 29 22:33:52 2001 -0130")).toMatchObject({ tzOffsetMinutes: -90 });
    expect(parseFromLine("a Thu Nov  9 22:33:52 2001")?.receivedTime).toBe(new Date(2001, 10, 9, 22, 33, 52).getTime() / 1000);
    expect(parseFromLine("a Thu Nov 9 22:33 2001")).toBeDefined();
    expect(parseFromLine("a Thu nov 29 22:33:52 PST 2001")).toBeDefined();
    expect(parseFromLine("a Thu, 29 Nov 2001 22:33:52")).toBeDefined();
    expect(parseFromLine('"x y"@z Thu Nov 29 22:33:52 2001')?.sender).toBe('"x y"@z');
    expect(parseFromLine("a   Thu Nov 29 22:33:52 2001 trailing junk")).toBeDefined();
    expect(parseFromLine("MAILER_DAEMON  Mon Nov 23 09:41:03 2026")?.sender).toBe("MAILER_DAEMON");
    expect(parseFromLine("a ??? ??? 29 22:33:52 2001")).toBeDefined();
  });

  it("rejects body text that only starts like a From_ line", () => {
    for (const bad of ["the start", "me", "a Thu Nov 29 2001", "a Thu Xyz 29 22:33:52 2001", "a Thu Nov 29 22:33:52", "a Thu Nov 29 22-33-52 2001", "a Thu Nov 29 22:33:52 01"]) {
      expect(parseFromLine(bad), bad).toBeUndefined();
    }
  });
});
