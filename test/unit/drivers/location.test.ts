import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { expandLocationHome, formatMailLocation, isIndexInMemory, parseMailLocation } from "../../../src/drivers/location.js";
import type { MailLocation } from "../../../src/drivers/location.js";
import { defaultMboxInbox, detectFormatAt, resolveMailLocation } from "../../../src/drivers/location-detect.js";
import type { FsProbe, PathKind } from "../../../src/drivers/location-detect.js";
import { InvalidArgumentError, MailstoreError } from "../../../src/shared/errors.js";

/** An in-memory file system: path → kind; everything is accessible except paths in `denied`. */
function probe(entries: Record<string, PathKind>, denied: string[] = []): FsProbe {
  return {
    kind: (p) => entries[p],
    access: (p) => entries[p] !== undefined && !denied.includes(p),
  };
}

describe("parseMailLocation", () => {
  it("reads the forms of doveadm-oracle.md §4", () => {
    expect(parseMailLocation("maildir:~/Maildir")).toEqual({ driver: "maildir", root: "~/Maildir" });
    expect(parseMailLocation("mbox:~/mail:INBOX=/var/mail/user")).toEqual({ driver: "mbox", root: "~/mail", inbox: "/var/mail/user" });
    expect(parseMailLocation("sdbox:/p:ALT=/alt")).toEqual({ driver: "sdbox", root: "/p", alt: "/alt" });
    expect(parseMailLocation("mdbox:/p:INDEX=/dir:CONTROL=/c:LAYOUT=fs")).toEqual({ driver: "mdbox", root: "/p", index: "/dir", control: "/c", layout: "fs" });
  });

  it("treats INDEX=MEMORY and INDEX= as in-memory, but not INDEX=memory", () => {
    expect(isIndexInMemory(parseMailLocation("maildir:/m:INDEX=MEMORY"))).toBe(true);
    expect(isIndexInMemory(parseMailLocation("maildir:/m:INDEX="))).toBe(true);
    expect(parseMailLocation("maildir:/m:INDEX=memory").index).toBe("memory");
    expect(isIndexInMemory(parseMailLocation("maildir:/m"))).toBe(false);
  });

  it("unescapes '::' and ignores a trailing ':' (as doveadm -D shows)", () => {
    expect(parseMailLocation("maildir:/tmp/md::x").root).toBe("/tmp/md:x");
    expect(parseMailLocation("maildir:/tmp/md:INDEX=/a::b").index).toBe("/a:b");
    expect(parseMailLocation("maildir:/tmp/md:")).toEqual({ driver: "maildir", root: "/tmp/md" });
    expect(parseMailLocation("maildir:/a:::INDEX=/i")).toEqual({ driver: "maildir", root: "/a:", index: "/i" });
  });

  it("lower-cases the driver, strips one trailing slash, knows the flags", () => {
    expect(parseMailLocation("MAILDIR:/tmp/md/")).toEqual({ driver: "maildir", root: "/tmp/md" });
    expect(parseMailLocation("mbox:/m:UTF-8:NO-NOSELECT:ALTNOCHECK:BROKENCHAR=%")).toEqual({
      driver: "mbox",
      root: "/m",
      utf8: true,
      noNoselect: true,
      altNoCheck: true,
      brokenChar: "%",
    });
    expect(parseMailLocation("maildir:/m:FULLDIRNAME=x")).toMatchObject({ dirName: "x", fullDirName: true });
  });

  it("has no driver for a bare path, even with settings", () => {
    expect(parseMailLocation("/srv/mail")).toEqual({ root: "/srv/mail" });
    expect(parseMailLocation("/srv/mail:INDEX=/i")).toEqual({ root: "/srv/mail", index: "/i" });
    expect(parseMailLocation("")).toEqual({ root: "" });
  });

  it("rejects what doveadm rejects", () => {
    for (const bad of ["foo:/x", "maildir:/m:FOO=bar", "maildir:/m:layout=fs", "maildir:/m:UTF-8=yes", "maildir:/m:utf-8", "maildir:/m:ITERINDEX", "maildir:/m:BROKENCHAR=ab", "mbox:INBOX=/x"]) {
      expect(() => parseMailLocation(bad), bad).toThrow(InvalidArgumentError);
    }
    expect(parseMailLocation("maildir:/m:INDEX=/i:ITERINDEX")).toMatchObject({ iterIndex: true });
  });
});

describe("formatMailLocation", () => {
  it("writes the canonical form", () => {
    expect(formatMailLocation({ driver: "mbox", root: "/r/mail", inbox: "/r/inbox" })).toBe("mbox:/r/mail:INBOX=/r/inbox");
    expect(formatMailLocation({ driver: "maildir", root: "/a:b", index: "" })).toBe("maildir:/a::b:INDEX=MEMORY");
    expect(formatMailLocation({ root: "/srv/mail", index: "/i" })).toBe("/srv/mail:INDEX=/i");
    expect(() => formatMailLocation({ root: "Maildir", index: "/i" })).toThrow(InvalidArgumentError);
  });

  it("round-trips through parse for any values", () => {
    const value = fc.string({ unit: fc.constantFrom("a", "/", ":", "=", "x", "."), minLength: 1, maxLength: 8 }).map((s) => s.replace(/\/+$/, "") || "v");
    const loc = fc.record(
      {
        driver: fc.constantFrom("maildir" as const, "mbox" as const, "sdbox" as const, "mdbox" as const),
        root: value.map((v) => `/${v}`).map((v) => (v.length > 1 && v.endsWith("/") ? v.slice(0, -1) : v)),
        inbox: value,
        index: value,
        control: value,
        alt: value,
        layout: value,
        utf8: fc.constant(true),
        noNoselect: fc.constant(true),
      },
      { requiredKeys: ["driver", "root"] },
    );
    fc.assert(
      fc.property(loc, (l) => {
        expect(parseMailLocation(formatMailLocation(l as MailLocation))).toEqual(l);
      }),
    );
  });
});

describe("expandLocationHome", () => {
  it("expands ~ and ~/ but not ~user", () => {
    const loc = parseMailLocation("mbox:~/mail:INBOX=~/inbox:INDEX=~other/x");
    expect(expandLocationHome(loc, "/home/u")).toEqual({ driver: "mbox", root: "/home/u/mail", inbox: "/home/u/inbox", index: "~other/x" });
  });
});

describe("autodetection", () => {
  it("detects a bare path by its marker directories", () => {
    expect(detectFormatAt("/m", probe({ "/m": "dir", "/m/cur": "dir" }))).toBe("maildir");
    expect(detectFormatAt("/m", probe({ "/m": "dir", "/m/mailboxes": "dir" }))).toBe("sdbox");
    // Dovecot would say sdbox here (it checks mailboxes/ first); see location-detect.ts.
    expect(detectFormatAt("/m", probe({ "/m": "dir", "/m/mailboxes": "dir", "/m/storage": "dir" }))).toBe("mdbox");
    expect(detectFormatAt("/m", probe({ "/m": "dir", "/m/.imap": "dir" }))).toBe("mbox");
    expect(detectFormatAt("/m", probe({ "/m": "dir", "/m/inbox": "file" }))).toBe("mbox");
    expect(detectFormatAt("/m", probe({ "/m": "dir", "/m/mbox": "file" }))).toBe("mbox");
    expect(detectFormatAt("/m", probe({ "/m": "dir", "/m/inbox": "dir" }))).toBeUndefined();
    // doveadm: "has .imap/: no R/W/X access" — not an mbox root then
    expect(detectFormatAt("/m", probe({ "/m": "dir", "/m/.imap": "dir" }, ["/m/.imap"]))).toBeUndefined();
    expect(detectFormatAt("/m", probe({ "/m": "dir", "/m/inbox": "file" }, ["/m/inbox"]))).toBeUndefined();
  });

  it("searches the home when mail_location is empty, in Dovecot's order", () => {
    const fsys = { "/h/Maildir": "dir", "/h/Maildir/cur": "dir", "/h/mail": "dir", "/h/mail/.imap": "dir" } as const;
    expect(resolveMailLocation("", { home: "/h", probe: probe(fsys) })).toMatchObject({ driver: "maildir", root: "/h/Maildir", autodetected: true });
    // ~/Maildir without cur/ is skipped, as doveadm does.
    expect(resolveMailLocation(undefined, { home: "/h", user: "u", probe: probe({ "/h/Maildir": "dir", "/h/mail": "dir", "/h/mail/.imap": "dir" }) })).toEqual({
      driver: "mbox",
      root: "/h/mail",
      inbox: "/h/mail/inbox",
      autodetected: true,
    });
    expect(() => resolveMailLocation("", { home: "/h", probe: probe({}) })).toThrow(MailstoreError);
    // a ~/Maildir the user cannot use is passed over
    expect(resolveMailLocation("", { home: "/h", probe: probe(fsys, ["/h/Maildir"]) })).toMatchObject({ driver: "mbox", root: "/h/mail" });
  });

  it("treats a file as an mbox INBOX and finds the root in the home", () => {
    const fsys = { "/var/mail/u": "file", "/h/Mail": "dir", "/h/Mail/mbox": "file" } as const;
    expect(resolveMailLocation("/var/mail/u", { home: "/h", probe: probe(fsys) })).toMatchObject({ driver: "mbox", root: "/h/Mail", inbox: "/var/mail/u" });
    expect(() => resolveMailLocation("/var/mail/u", { home: "/nowhere", probe: probe(fsys) })).toThrow(/Ambiguous mail location/);
  });

  it("picks the mbox INBOX from /var/mail, /var/spool/mail, else <root>/inbox", () => {
    expect(defaultMboxInbox("/r", "u", probe({ "/var/mail/u": "file" }))).toBe("/var/mail/u");
    expect(defaultMboxInbox("/r", "u", probe({ "/var/spool/mail/u": "file" }))).toBe("/var/spool/mail/u");
    expect(defaultMboxInbox("/r", "u", probe({ "/var/mail/u": "file" }, ["/var/mail/u"]))).toBe("/r/inbox");
    expect(resolveMailLocation("mbox:~/mail", { home: "/h", user: "u", probe: probe({}) })).toEqual({ driver: "mbox", root: "/h/mail", inbox: "/h/mail/inbox", autodetected: false });
  });

  it("uses MAIL when mail_location is empty", () => {
    const r = resolveMailLocation("", { env: { MAIL: "maildir:/x/Maildir" }, probe: probe({}) });
    expect(r).toMatchObject({ driver: "maildir", root: "/x/Maildir", autodetected: false });
    const explicit = resolveMailLocation("sdbox:/s", { env: { MAIL: "maildir:/x" }, probe: probe({}) });
    expect(explicit.driver).toBe("sdbox");
  });
});
