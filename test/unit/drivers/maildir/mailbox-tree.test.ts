import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MaildirLayout } from "../../../../src/drivers/maildir/layout.js";
import { createMaildirMailbox, deleteMaildirMailbox, listMaildirMailboxes, maildirMailboxExists, renameMaildirMailbox } from "../../../../src/drivers/maildir/mailbox-tree.js";
import { InvalidArgumentError, MailstoreError } from "../../../../src/shared/errors.js";

describe("Maildir mailbox tree", () => {
  let root: string;
  beforeEach(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-maildir-tree-"))));
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it("Maildir++: create makes cur/ new/ tmp/ and maildirfolder; list shows INBOX and the folders", () => {
    const l = new MaildirLayout(root);
    createMaildirMailbox(l, "INBOX");
    createMaildirMailbox(l, "A/B");
    createMaildirMailbox(l, "Ünï");
    expect(fs.readdirSync(path.join(root, ".A.B")).sort()).toEqual(["cur", "maildirfolder", "new", "tmp"]);
    expect(fs.existsSync(path.join(root, "maildirfolder"))).toBe(false);
    expect(listMaildirMailboxes(l)).toEqual(["INBOX", "A/B", "Ünï"]);
    expect(() => createMaildirMailbox(l, "A/B")).toThrow(MailstoreError);
  });

  it("delete: atomic rename to ..DOVECOT-TRASHED, then removal; children survive; leftovers are cleaned", () => {
    const l = new MaildirLayout(root);
    createMaildirMailbox(l, "A");
    createMaildirMailbox(l, "A/B");
    fs.writeFileSync(path.join(root, ".A", "cur", "1.M1P1.h:2,S"), "x");
    fs.mkdirSync(path.join(root, "..DOVECOT-TRASHED", "cur"), { recursive: true }); // a crashed delete
    deleteMaildirMailbox(l, "A");
    expect(fs.readdirSync(root).sort()).toEqual([".A.B"]);
    fs.mkdirSync(path.join(root, "..DOVECOT-TRASHED"));
    expect(listMaildirMailboxes(l)).toEqual(["INBOX", "A/B"]);
    expect(fs.existsSync(path.join(root, "..DOVECOT-TRASHED"))).toBe(false);
    expect(() => deleteMaildirMailbox(l, "INBOX")).toThrow(expect.objectContaining({ code: "UNSUPPORTED" }));
    expect(() => deleteMaildirMailbox(l, "Nope")).toThrow(MailstoreError);
  });

  it("rename moves the folder and its children, with separate INDEX= trees", () => {
    const l = new MaildirLayout(path.join(root, "mail"), { index: path.join(root, "index") });
    createMaildirMailbox(l, "A");
    createMaildirMailbox(l, "A/B");
    createMaildirMailbox(l, "AB");
    fs.writeFileSync(path.join(root, "index", ".A.B", "dovecot.index.log"), "");
    renameMaildirMailbox(l, "A", "C/D");
    expect(listMaildirMailboxes(l)).toEqual(["INBOX", "AB", "C/D", "C/D/B"]);
    expect(fs.existsSync(path.join(root, "index", ".C.D.B", "dovecot.index.log"))).toBe(true);
    expect(maildirMailboxExists(l, "A")).toBe(false);
    expect(() => renameMaildirMailbox(l, "AB", "C/D")).toThrow(MailstoreError);
    expect(() => renameMaildirMailbox(l, "AB", "AB/x")).toThrow(InvalidArgumentError);
  });

  it("LAYOUT=fs: folders are directories with cur/; a parent keeps its children when deleted", () => {
    const l = new MaildirLayout(root, { layout: "fs" });
    createMaildirMailbox(l, "INBOX");
    createMaildirMailbox(l, "A");
    createMaildirMailbox(l, "A/B");
    expect(listMaildirMailboxes(l)).toEqual(["INBOX", "A", "A/B"]);
    deleteMaildirMailbox(l, "A");
    expect(listMaildirMailboxes(l)).toEqual(["INBOX", "A/B"]);
  });
});
