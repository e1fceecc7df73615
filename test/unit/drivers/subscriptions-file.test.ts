import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MailstoreError, SubscriptionsCorruptedError } from "../../../src/shared/errors.js";
import {
  encodeSubscriptionLine,
  formatSubscriptions,
  NO_SUBSCRIPTIONS,
  normalizeSubscriptionName,
  parseSubscriptions,
  setSubscribed,
  subscribedNames,
  type SubscriptionNaming,
} from "../../../src/drivers/subscriptions-file.js";

const DBOX: SubscriptionNaming = { separator: "/", utf8: false };
const MAILDIR: SubscriptionNaming = { separator: ".", utf8: false };
const MAILDIR_UTF8: SubscriptionNaming = { separator: ".", utf8: true };
const FILE = "/srv/mail/subscriptions";

const bytes = (s: string) => Buffer.from(s, "utf8");
const parse = (s: string | Buffer, naming = DBOX) => parseSubscriptions(typeof s === "string" ? bytes(s) : s, naming, FILE);
const names = (s: string | Buffer, naming = DBOX) => subscribedNames(parse(s, naming));

/** What doveadm 2.3.19 wrote after `mailbox subscribe INBOX a/b Grüße/日本 "tab<TAB>x" 'back\slash' '&lit'` (any format). */
const DOVECOT_FILE = "V\t2\n\nINBOX\na\tb\nGr&APwA3w-e\t&ZeVnLA-\ntab&AAk-x\nback\\slash\n&-lit\n";
const DOVECOT_NAMES = ["INBOX", "a/b", "Grüße/日本", "tab\tx", "back\\slash", "&lit"];

describe("subscriptions file codec", () => {
  it("reads and writes Dovecot's version-2 file byte for byte", () => {
    expect(names(DOVECOT_FILE)).toEqual(DOVECOT_NAMES);
    expect(names(DOVECOT_FILE, MAILDIR)).toEqual(DOVECOT_NAMES);
    let file = NO_SUBSCRIPTIONS;
    for (const n of DOVECOT_NAMES) file = setSubscribed(file, normalizeSubscriptionName(n, DBOX), DBOX, true)!;
    expect(formatSubscriptions(file).toString("utf8")).toBe(DOVECOT_FILE);
    expect(formatSubscriptions(parse(DOVECOT_FILE)).toString("utf8")).toBe(DOVECOT_FILE);
  });

  it("writes UTF-8 levels for UTF-8 locations", () => {
    expect(encodeSubscriptionLine("Grü/x", MAILDIR_UTF8, 2)).toBe("Grü\tx");
    expect(encodeSubscriptionLine("a&b", MAILDIR_UTF8, 2)).toBe("a&b");
    expect(names("V\t2\n\nGrü\tx\na&b\n", MAILDIR_UTF8)).toEqual(["Grü/x", "a&b"]);
  });

  it("reads version 1 (no header) with the namespace separator and keeps it version 1", () => {
    expect(names("INBOX\na/b\nc\n")).toEqual(["INBOX", "a/b", "c"]);
    expect(names("INBOX\na.b\nGr&APw-.x\n", MAILDIR)).toEqual(["INBOX", "a/b", "Grü/x"]);
    const v1 = parse("INBOX\na.b\n", MAILDIR);
    expect(v1.version).toBe(1);
    expect(formatSubscriptions(setSubscribed(v1, "new/x", MAILDIR, true)!).toString()).toBe("INBOX\na.b\nnew.x\n");
    // An existing empty file is version 1 too (observed: doveadm then writes "x\n").
    expect(formatSubscriptions(setSubscribed(parse(""), "x", DBOX, true)!).toString()).toBe("x\n");
    expect(formatSubscriptions(setSubscribed(NO_SUBSCRIPTIONS, "x", DBOX, true)!).toString()).toBe("V\t2\n\nx\n");
  });

  it("tolerates what Dovecot tolerates, and drops on rewrite what it drops", () => {
    const text = "V\t2\n\nINBOX\n\n\tlead\na\t\tb\n&xyz\nGr\u00fc\ninbox\ntrail\t\r\nnoeol";
    expect(names(text)).toEqual(["INBOX", "&xyz", "Grü", "trail"]);
    // Observed: doveadm's rewrite after `subscribe new` of this file.
    const rewritten = setSubscribed(parse(text), "new", DBOX, true)!;
    expect(formatSubscriptions(rewritten).toString("utf8")).toBe("V\t2\n\nINBOX\n&xyz\nGr\u00fc\ninbox\ntrail\t\nnew\n");
    // A name spelled as Dovecot would not write it still names the mailbox.
    expect(setSubscribed(parse("V\t2\n\ninbox\nGrü\n"), "Grü", DBOX, true)).toBeUndefined();
    expect(formatSubscriptions(setSubscribed(parse("V\t2\n\ninbox\nfoo\nfoo\n"), "INBOX", DBOX, false)!).toString()).toBe("V\t2\n\nfoo\nfoo\n");
    expect(formatSubscriptions(setSubscribed(parse("V\t2\n\nINBOX\nfoo\nfoo\n"), "foo", DBOX, false)!).toString()).toBe("V\t2\n\nINBOX\n");
    expect(names("V\t2\n\ninbox\tx\n")).toEqual(["INBOX/x"]);
    // Under Maildir++ a "." inside a stored level is one more level, as Dovecot shows it.
    expect(names("V\t2\n\nx.y\n", MAILDIR)).toEqual(["x/y"]);
  });

  it("reports a change only when there is one", () => {
    const file = parse("V\t2\n\nINBOX\n");
    expect(setSubscribed(file, "INBOX", DBOX, true)).toBeUndefined();
    expect(setSubscribed(file, "other", DBOX, false)).toBeUndefined();
    expect(formatSubscriptions(setSubscribed(file, "INBOX", DBOX, false)!).toString()).toBe("V\t2\n\n");
  });

  it("normalizes and checks names", () => {
    expect(normalizeSubscriptionName("inbox", DBOX)).toBe("INBOX");
    expect(normalizeSubscriptionName("Inbox/sub", DBOX)).toBe("INBOX/sub");
    expect(normalizeSubscriptionName("a.b/c", DBOX)).toBe("a.b/c");
    for (const bad of ["", "a/", "/a", "a//b", "a\0b"]) expect(() => normalizeSubscriptionName(bad, DBOX), bad).toThrow(MailstoreError);
    expect(() => normalizeSubscriptionName("a.b", MAILDIR)).toThrow(/hierarchy separator/);
    expect(() => normalizeSubscriptionName("a\tb", MAILDIR_UTF8)).toThrow(/control character/);
    expect(encodeSubscriptionLine("a\tb", MAILDIR, 2)).toBe("a&AAk-b");
  });

  it("rejects bad content with a typed error naming the file and offset", () => {
    const cases: Array<[string, Buffer, number]> = [
      ["NUL byte", Buffer.from("V\t2\n\nINBOX\na\0b\n", "latin1"), 12],
      ["not UTF-8", Buffer.from("V\t2\n\nINBOX\na\xffb\n", "latin1"), 11],
      ["unknown version", bytes("V\t3\n\nINBOX\n"), 0],
      ["header without its empty line", bytes("V\t2\nINBOX\n"), 0],
      ["header with CRLF", bytes("V\t2\r\n\r\nx\n"), 0],
      ["binary garbage", Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00]), 8],
    ];
    for (const [what, data, offset] of cases) {
      let caught: unknown;
      try {
        parse(data);
      } catch (err) {
        caught = err;
      }
      expect(caught, what).toBeInstanceOf(SubscriptionsCorruptedError);
      expect(caught, what).toMatchObject({ code: "SUBSCRIPTIONS_CORRUPTED", path: FILE, offset });
      expect((caught as Error).message, what).toContain(FILE);
    }
  });

  it("reads back whatever it writes (any Unicode names)", () => {
    const level = fc.string({ unit: "grapheme", minLength: 1, maxLength: 6 }).filter((l) => !l.includes("/") && !l.includes("\0"));
    fc.assert(
      fc.property(fc.array(fc.array(level, { minLength: 1, maxLength: 3 }), { maxLength: 6 }), fc.boolean(), (list, v1) => {
        let file = v1 ? parse("") : NO_SUBSCRIPTIONS;
        const expected = new Set<string>();
        for (const levels of list) {
          const name = normalizeSubscriptionName(levels.join("/"), DBOX);
          expected.add(name);
          file = setSubscribed(file, name, DBOX, true) ?? file;
        }
        expect(names(formatSubscriptions(file))).toEqual([...expected]);
      }),
      { numRuns: 300 },
    );
  });

  it("never throws anything but its typed error on arbitrary bytes", () => {
    const byte = fc.constantFrom(0x0a, 0x0d, 0x09, 0x56, 0x32, 0x26, 0x2d, 0x41, 0x61, 0x2f, 0x2e, 0xc3, 0xbc, 0xff, 0x00);
    fc.assert(
      fc.property(fc.array(byte, { maxLength: 40 }), fc.constantFrom(DBOX, MAILDIR, MAILDIR_UTF8), (data, naming) => {
        try {
          const file = parseSubscriptions(Buffer.from(data), naming, FILE);
          subscribedNames(file);
          formatSubscriptions(file);
        } catch (err) {
          expect(err).toBeInstanceOf(SubscriptionsCorruptedError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
