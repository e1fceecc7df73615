import { describe, expect, it } from "vitest";
import { dboxTempFileName, isDboxTempFileName } from "../../../../src/drivers/dbox/temp-name.js";

describe("dbox temp file names", () => {
  it("look like Dovecot's: .temp.<secs>.P<pid>Q<n>M<usecs>.<host>", () => {
    expect(dboxTempFileName({ nowMs: 1795426777583.251, pid: 14425, counter: 0, hostname: "vm" })).toBe(".temp.1795426777.P14425Q0M583251.vm");
    expect(dboxTempFileName({ nowMs: 1000, pid: 1, counter: 3, hostname: "a/b" })).toBe(".temp.1.P1Q3M0.a_b");
  });

  it("count up within a process", () => {
    const a = dboxTempFileName();
    const b = dboxTempFileName();
    const q = (n: string) => Number(/Q(\d+)M/.exec(n)![1]);
    expect(q(b)).toBe(q(a) + 1);
    expect(a).toMatch(new RegExp(`^\\.temp\\.\\d+\\.P${process.pid}Q\\d+M\\d{1,6}\\.`));
    expect(isDboxTempFileName(a)).toBe(true);
    expect(isDboxTempFileName("u.1")).toBe(false);
  });
});
