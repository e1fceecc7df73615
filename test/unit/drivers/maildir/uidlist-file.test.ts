import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UidlistFile, uidlistWantsRewrite } from "../../../../src/drivers/maildir/uidlist-file.js";

const HEADER = { version: 3 as const, uidValidity: 7, nextUid: 1, guid: "0123456789abcdef0123456789abcdef", extensions: [] };

describe("dovecot-uidlist file", () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-uidlist-"));
    file = path.join(dir, "dovecot-uidlist");
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("creates, appends without touching the header, and recreates through .tmp", () => {
    const u = new UidlistFile(file, false);
    expect(u.read()).toBeUndefined();
    u.create(HEADER);
    expect(fs.readFileSync(file, "utf8")).toBe("3 V7 N1 G0123456789abcdef0123456789abcdef\n");
    u.append([{ uid: 1, extensions: [], fileName: "a,S=1,W=1" }, { uid: 2, extensions: [["G", "guid2"]], fileName: "b" }]);
    expect(fs.readFileSync(file, "utf8")).toBe("3 V7 N1 G0123456789abcdef0123456789abcdef\n1 :a,S=1,W=1\n2 Gguid2 :b\n");
    const s = u.recreate({ ...HEADER, nextUid: 3 }, [{ uid: 2, extensions: [["G", "guid2"]], fileName: "b" }]);
    expect(fs.readFileSync(file, "utf8")).toBe("3 V7 N3 G0123456789abcdef0123456789abcdef\n2 Gguid2 :b\n");
    expect(s.recordOf(2)?.fileName).toBe("b");
    expect(s.recordOf(1)).toBeUndefined();
    expect(fs.existsSync(`${file}.tmp`)).toBe(false);
  });

  it("caches by stamp and reads only the lines another process appended", () => {
    const u = new UidlistFile(file, false);
    u.create(HEADER);
    const first = u.read()!;
    expect(u.read()).toBe(first);
    fs.appendFileSync(file, "4 :x\n5 :y\n");
    const grown = u.read()!;
    expect(grown.records.map((r) => r.uid)).toEqual([4, 5]);
    expect(grown.byBase.get("y")?.uid).toBe(5);
    expect(grown.lineCount).toBe(2);
    fs.appendFileSync(file, "6 :x\n"); // x got a new UID: the later line wins
    expect(u.read()!.records.map((r) => [r.uid, r.fileName])).toEqual([[5, "y"], [6, "x"]]);
  });

  it("a torn last line is not appended after: the file is recreated instead", () => {
    fs.writeFileSync(file, "3 V7 N1 G0123456789abcdef0123456789abcdef\n1 :a\n2 :b-tor");
    const u = new UidlistFile(file, false);
    expect(u.read()!.torn).toBe(true);
    u.append([{ uid: 3, extensions: [], fileName: "c" }]);
    // A recreated file carries N past its last record, as Dovecot writes its next_uid.
    expect(fs.readFileSync(file, "utf8")).toBe("3 V7 N4 G0123456789abcdef0123456789abcdef\n1 :a\n3 :c\n");
  });

  it("recreate never writes N at or below a record it keeps", () => {
    const u = new UidlistFile(file, false);
    u.create(HEADER);
    u.recreate(HEADER, [{ uid: 5, extensions: [], fileName: "e" }]);
    expect(fs.readFileSync(file, "utf8")).toBe("3 V7 N6 G0123456789abcdef0123456789abcdef\n5 :e\n");
  });

  it("two creators: one file wins, the other reads it", () => {
    const a = new UidlistFile(file, false);
    const b = new UidlistFile(file, false);
    a.create(HEADER);
    expect(b.create({ ...HEADER, uidValidity: 99 }).header.uidValidity).toBe(7);
  });

  it("Dovecot's 75 % rule (observed: 8 lines, 1 expunged → kept; 2 → rewritten)", () => {
    expect(uidlistWantsRewrite(8, 0, 7)).toBe(false);
    expect(uidlistWantsRewrite(8, 0, 6)).toBe(true);
    expect(uidlistWantsRewrite(6, 0, 5)).toBe(false);
  });
});
