import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  formatUidlist,
  formatUidlistRecord,
  parseUidlist,
  uidlistMessageGuid,
  uidlistNextUid,
  uidlistRecordExtension,
} from "../../../../src/drivers/maildir/uidlist.js";
import type { Uidlist } from "../../../../src/drivers/maildir/uidlist.js";
import { MailCorruptedError } from "../../../../src/shared/errors.js";

// Written by doveadm 2.3.19 (save ×3, flags, expunge of uid 2).
const DOVECOT = "3 V1795426730 N4 G1b155036aa09046bf836000083ecc375\n1 :1795426730.M910978P14072.vm,S=55,W=61\n3 :1795426730.M942495P14079.vm,S=31,W=33\n";

describe("parseUidlist", () => {
  it("reads a file Dovecot wrote and re-encodes it byte for byte", () => {
    const list = parseUidlist(Buffer.from(DOVECOT));
    expect(list.header).toEqual({ version: 3, uidValidity: 1795426730, nextUid: 4, guid: "1b155036aa09046bf836000083ecc375", extensions: [] });
    expect(list.records.map((r) => r.uid)).toEqual([1, 3]);
    expect(list.records[0]).toEqual({ uid: 1, extensions: [], fileName: "1795426730.M910978P14072.vm,S=55,W=61" });
    expect(list.partialLine).toBe("");
    expect(formatUidlist(list)).toBe(DOVECOT);
  });

  it("keeps extension fields and other header fields in order", () => {
    const text = "3 V5 N9 Gaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa Pfoo Xbar\n2 W20 S18 G0123 :b1\n7 O3 P%u :b2\n";
    const list = parseUidlist(text);
    expect(list.header.extensions).toEqual([["P", "foo"], ["X", "bar"]]);
    expect(list.records[0].extensions).toEqual([["W", "20"], ["S", "18"], ["G", "0123"]]);
    expect(uidlistRecordExtension(list.records[0], "S")).toBe("18");
    expect(uidlistMessageGuid(list.records[0])).toBe("0123");
    expect(uidlistMessageGuid(list.records[1])).toBe("b2");
    expect(formatUidlist(list)).toBe(text);
  });

  it("ignores a torn last line and drops invalid extension tokens", () => {
    const list = parseUidlist("3 V5 N9\n1 :a\n2 x5 W3 :b\n3 :c");
    expect(list.records.map((r) => r.uid)).toEqual([1, 2]);
    expect(list.records[1].extensions).toEqual([["W", "3"]]);
    expect(list.droppedExtensions).toEqual(["x5"]);
    expect(list.partialLine).toBe("3 :c");
  });

  it("lets a later record for the same file replace the earlier one", () => {
    const list = parseUidlist("3 V5 N9\n1 :a\n2 :b\n4 :a\n");
    expect(list.records.map((r) => [r.uid, r.fileName])).toEqual([[2, "b"], [4, "a"]]);
  });

  it("replaces a file's record each time it comes again, and reads records with extra spaces or fields alike", () => {
    const list = parseUidlist("3 V5 N9\n1 :a\n2  :b\n3 :a\n4 W7 :c\n6 :a\n");
    expect(list.records.map((r) => [r.uid, r.fileName, r.extensions])).toEqual([[2, "b", []], [4, "c", [["W", "7"]]], [6, "a", []]]);
  });

  it("raises the next UID past appended records", () => {
    expect(uidlistNextUid(parseUidlist("3 V5 N2\n1 :a\n5 :b\n"))).toBe(6);
    expect(uidlistNextUid(parseUidlist("3 V5 N9\n1 :a\n"))).toBe(9);
  });

  it("reads version 1", () => {
    const list = parseUidlist("1 77 10\n1 a:2,S\n9 b\n");
    expect(list.header).toEqual({ version: 1, uidValidity: 77, nextUid: 10, extensions: [] });
    expect(list.records.map((r) => r.fileName)).toEqual(["a:2,S", "b"]);
    expect(formatUidlist(list)).toBe("1 77 10\n1 a:2,S\n9 b\n");
  });

  it("throws MailCorruptedError where Dovecot calls the file broken, with the line's offset", () => {
    const cases: Array<[string, number]> = [
      ["", 0],
      ["3 V1 N2", 0],
      ["2 V1 N2\n", 0],
      ["x V1 N2\n", 0],
      ["3 N2\n", 0],
      ["3 V1 N0\n", 0],
      ["3 V1 N2 Gxyz\n", 0],
      ["3 V1 N2\n0 :a\n", 8],
      ["3 V1 N2\n1:a\n", 8],
      ["3 V1 N2\n2 :a\n2 :b\n", 13],
      ["3 V1 N2\n2 :a\n1 :b\n", 13],
      ["3 V1 N2\n4294967295 :a\n", 8],
      ["3 V1 N2\n1 :\n", 8],
      ["3 V1 N2\n1 W5\n", 8],
      ["3 V1 N2\n1 :a/b\n", 8],
      ["1 1 2\n2 a\n", 6],
      // Offsets count bytes: é is two.
      ["3 V1 N2\n1 :é\n2 :a/b\n", 14],
      ["3 V1 N2\n1  :a\n2 W1 :b\n3 :\n", 22],
    ];
    for (const [text, offset] of cases) {
      let err: unknown;
      try {
        parseUidlist(text, "/m/dovecot-uidlist");
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(text)).toBeInstanceOf(MailCorruptedError);
      expect((err as MailCorruptedError).offset, JSON.stringify(text)).toBe(offset);
      expect((err as MailCorruptedError).path).toBe("/m/dovecot-uidlist");
    }
  });

  it("round-trips any list it can write", () => {
    const field = fc.tuple(fc.constantFrom("S", "W", "G", "P", "O"), fc.stringMatching(/^[0-9a-z%]{0,6}$/));
    const arb = fc
      .record({
        uidValidity: fc.integer({ min: 1, max: 0xffffffff }),
        nextUid: fc.integer({ min: 1, max: 0xfffffff }),
        guid: fc.option(fc.stringMatching(/^[0-9a-f]{32}$/), { nil: undefined }),
        uids: fc.uniqueArray(fc.integer({ min: 1, max: 0xfffffffe }), { maxLength: 20 }),
        exts: fc.array(fc.array(field, { maxLength: 3 }), { minLength: 20, maxLength: 20 }),
      })
      .map(({ uidValidity, nextUid, guid, uids, exts }): Uidlist => ({
        header: { version: 3, uidValidity, nextUid, ...(guid ? { guid } : {}), extensions: [] },
        records: [...uids].sort((a, b) => a - b).map((uid, i) => ({ uid, extensions: exts[i], fileName: `${uid}.M1P2.host,S=${i}` })),
      }));
    fc.assert(
      fc.property(arb, (list) => {
        const text = formatUidlist(list);
        const back = parseUidlist(text);
        expect({ header: back.header, records: back.records }).toEqual(list);
        expect(formatUidlist(back)).toBe(text);
      }),
    );
  });

  it("writes the base name of a full file name", () => {
    expect(formatUidlistRecord({ uid: 4, extensions: [["G", "x"]], fileName: "a,S=1:2,S" })).toBe("4 Gx :a,S=1\n");
  });
});
