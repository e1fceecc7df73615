import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { classifyMaildirRootEntry, maildirMailboxDir, maildirParentName, MAILDIR_TRASH_DIR_NAME } from "../../../../src/drivers/maildir/folders.js";
import { decodeMutf7, encodeMutf7 } from "../../../../src/drivers/mutf7.js";
import { InvalidArgumentError } from "../../../../src/shared/errors.js";

describe("Maildir++ folder names", () => {
  it("maps mailbox names to directories as doveadm does", () => {
    expect(maildirMailboxDir("INBOX")).toBe("");
    expect(maildirMailboxDir("inbox")).toBe("");
    expect(maildirMailboxDir("Sub.Child")).toBe(".Sub.Child");
    expect(maildirMailboxDir("Weird&Name")).toBe(".Weird&-Name");
    expect(maildirMailboxDir("Ünï")).toBe(".&ANw-n&AO8-");
    expect(maildirMailboxDir("Ünï", { utf8: true })).toBe(".Ünï");
    expect(maildirMailboxDir("a~b")).toBe(".a~b");
    for (const bad of ["x/y", "", "a..b", ".a", "a."]) expect(() => maildirMailboxDir(bad), bad).toThrow(InvalidArgumentError);
  });

  it("classifies root entries; '..' directories are deletions in progress", () => {
    expect(classifyMaildirRootEntry(".Sub.Child")).toEqual({ kind: "mailbox", name: "Sub.Child" });
    expect(classifyMaildirRootEntry(".&ANw-n&AO8-")).toEqual({ kind: "mailbox", name: "Ünï" });
    expect(classifyMaildirRootEntry(".&broken")).toEqual({ kind: "mailbox", name: "&broken" });
    expect(classifyMaildirRootEntry(MAILDIR_TRASH_DIR_NAME)).toEqual({ kind: "deleting", dirName: "..DOVECOT-TRASHED" });
    for (const other of ["cur", "new", "tmp", ".", "..", "dovecot-uidlist"]) expect(classifyMaildirRootEntry(other).kind).toBe("other");
    expect(maildirParentName("A.B.C")).toBe("A.B");
    expect(maildirParentName("A")).toBeUndefined();
  });
});

describe("modified UTF-7", () => {
  it("follows RFC 3501", () => {
    expect(encodeMutf7("~peter/mail/台北/日本語")).toBe("~peter/mail/&U,BTFw-/&ZeVnLIqe-");
    expect(decodeMutf7("~peter/mail/&U,BTFw-/&ZeVnLIqe-")).toBe("~peter/mail/台北/日本語");
    expect(encodeMutf7("&")).toBe("&-");
    for (const bad of ["&Jjo!", "&U,BTFw", "\u00e9", "&AGE-"]) expect(() => decodeMutf7(bad), bad).toThrow(InvalidArgumentError);
  });

  it("round-trips any string", () => {
    fc.assert(fc.property(fc.string({ unit: "grapheme" }), (s) => {
        expect(decodeMutf7(encodeMutf7(s))).toBe(s);
      }));
  });
});
