import { describe, expect, it } from "vitest";
import { MaildirLayout } from "../../../../src/drivers/maildir/layout.js";
import { InvalidArgumentError, MailstoreError } from "../../../../src/shared/errors.js";

// Paths observed with doveadm 2.3.19 for each location form.
describe("MaildirLayout", () => {
  it("Maildir++: INBOX is the root, A/B is .A.B, index and control files live with the mail", () => {
    const l = new MaildirLayout("/m");
    expect(l.mailDir("inbox")).toBe("/m");
    expect(l.mailDir("A/B")).toBe("/m/.A.B");
    expect(l.mailDir("Ünï")).toBe("/m/.&ANw-n&AO8-");
    expect(l.indexDir("A/B")).toBe("/m/.A.B");
    expect(l.controlDir("INBOX")).toBe("/m");
    expect(l.uidValidityDir).toBe("/m");
  });

  it("INDEX=, CONTROL=, INBOX= move their files into trees named like the mail tree (INBOX as .INBOX)", () => {
    const l = new MaildirLayout("/m", { index: "/i", control: "/c", inbox: "/inbox" });
    expect(l.mailDir("INBOX")).toBe("/inbox");
    expect(l.indexDir("INBOX")).toBe("/i/.INBOX");
    expect(l.controlDir("A/B")).toBe("/c/.A.B");
    expect(l.uidValidityDir).toBe("/c");
  });

  it("LAYOUT=fs: A/B is a directory path; INBOX's index is INDEX/INBOX", () => {
    const l = new MaildirLayout("/m", { layout: "fs", index: "/i" });
    expect(l.mailDir("A/B")).toBe("/m/A/B");
    expect(l.indexDir("INBOX")).toBe("/i/INBOX");
    expect(l.indexDir("A/B")).toBe("/i/A/B");
    expect(() => l.mailDir("new")).toThrow(InvalidArgumentError);
  });

  it("refuses names Maildir++ cannot store, and unsupported locations", () => {
    const l = new MaildirLayout("/m");
    for (const bad of ["a.b", "A/", "/A", "A//B", "..", "A/./B"]) expect(() => l.mailDir(bad), bad).toThrow(InvalidArgumentError);
    expect(() => new MaildirLayout("/m", { index: "" })).toThrow(MailstoreError);
    expect(() => new MaildirLayout("/m", { layout: "index" })).toThrow(MailstoreError);
  });
});
