import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { nextUidValidity, readUidValidity } from "../../../../src/drivers/dbox/uidvalidity.js";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "dbox-uidv-"));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const markers = () => fs.readdirSync(dir).filter((n) => n.startsWith("dovecot-uidvalidity.")).sort();
const main = () => fs.readFileSync(path.join(dir, "dovecot-uidvalidity"), "latin1");

describe("dovecot-uidvalidity", () => {
  it("starts from the clock and creates a 0444 marker", async () => {
    expect(await readUidValidity(dir)).toBeUndefined();
    expect(await nextUidValidity(dir, 0x6b040977)).toBe(0x6b040977);
    expect(main()).toBe("6b040977");
    expect(markers()).toEqual(["dovecot-uidvalidity.6b040977"]);
    expect(fs.statSync(path.join(dir, "dovecot-uidvalidity.6b040977")).mode & 0o777).toBe(0o444 & ~process.umask());
    expect(await readUidValidity(dir)).toBe(0x6b040977);
  });

  it("then counts up by renaming the marker, whatever the clock says", async () => {
    await nextUidValidity(dir, 100);
    expect(await nextUidValidity(dir, 5000)).toBe(101);
    expect(await nextUidValidity(dir, 1)).toBe(102);
    expect(main()).toBe("00000066");
    expect(markers()).toEqual(["dovecot-uidvalidity.00000066"]);
  });

  it("with a broken main file uses the highest marker and deletes the lower ones", async () => {
    fs.writeFileSync(path.join(dir, "dovecot-uidvalidity"), "zzzz");
    fs.writeFileSync(path.join(dir, "dovecot-uidvalidity.00000005"), "");
    fs.writeFileSync(path.join(dir, "dovecot-uidvalidity.6b040979"), "");
    expect(await readUidValidity(dir)).toBeUndefined();
    expect(await nextUidValidity(dir, 1)).toBe(0x6b04097a);
    expect(markers()).toEqual(["dovecot-uidvalidity.6b04097a"]);
    expect(main()).toBe("6b04097a");
  });

  it("with no marker left uses the clock even when the main file is ahead", async () => {
    fs.writeFileSync(path.join(dir, "dovecot-uidvalidity"), "7fffffff");
    expect(await nextUidValidity(dir, 0x6b040b05)).toBe(0x6b040b05);
    expect(markers()).toEqual(["dovecot-uidvalidity.6b040b05"]);
  });

  it("wraps past 0xffffffff to 1, skipping 0", async () => {
    await nextUidValidity(dir, 0xffffffff);
    expect(await nextUidValidity(dir)).toBe(1);
  });

  it("hands out distinct values to concurrent callers", async () => {
    await nextUidValidity(dir, 1000);
    const values = await Promise.all(Array.from({ length: 8 }, () => nextUidValidity(dir, 1)));
    expect(new Set(values).size).toBe(8);
    expect(markers().length).toBe(1);
  });
});
