import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DboxLayout } from "../../../../src/drivers/dbox/layout.js";
import { createDboxMailboxDir, deleteDboxMailboxDir, listDboxMailboxes, renameDboxMailboxDir } from "../../../../src/drivers/dbox/mailbox-tree.js";
import { MdboxPaths } from "../../../../src/drivers/mdbox/paths.js";
import { MailstoreError } from "../../../../src/shared/errors.js";

/** Every path under `dir`, relative, sorted (directories end in "/"). */
function tree(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)) + (e.isDirectory() ? "/" : ""))
    .sort();
}

describe("dbox layout and mailbox tree with INDEX= (layout as doveadm 2.3.19 keeps it)", () => {
  let dir: string;
  let mail: string;
  let index: string;
  let layout: DboxLayout;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "dbox-tree-"));
    mail = path.join(dir, "r");
    index = path.join(dir, "i");
    fs.mkdirSync(mail);
    layout = new DboxLayout(mail, { index });
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("index files go to <INDEX>/mailboxes/<name>, mail stays in dbox-Mails; without INDEX= both are dbox-Mails", () => {
    expect(layout.mailDir("A/B")).toBe(path.join(mail, "mailboxes/A/B/dbox-Mails"));
    expect(layout.indexPrefix("A/B")).toBe(path.join(index, "mailboxes/A/B/dovecot.index"));
    expect(layout.indexRootDir).toBe(index);
    const plain = new DboxLayout(mail);
    expect(plain.indexPrefix("A/B")).toBe(path.join(mail, "mailboxes/A/B/dbox-Mails/dovecot.index"));
    expect(plain.indexRootDir).toBe(mail);
    expect(new MdboxPaths(mail, undefined, index).mapPrefix).toBe(path.join(index, "storage/dovecot.map.index"));
    expect(new MdboxPaths(mail).mapPrefix).toBe(path.join(mail, "storage/dovecot.map.index"));
  });

  it("INDEX=MEMORY (\"\") is refused with UNSUPPORTED, for sdbox and mdbox", () => {
    for (const make of [() => new DboxLayout(mail, { index: "" }), () => new MdboxPaths(mail, undefined, "")]) {
      expect(make).toThrow(MailstoreError);
      expect(make).toThrow(expect.objectContaining({ code: "UNSUPPORTED" }));
    }
  });

  it("create makes both directories; delete removes the mailbox's index files but not its children's", () => {
    createDboxMailboxDir(layout, "P");
    createDboxMailboxDir(layout, "P/Q");
    for (const name of ["P", "P/Q"]) fs.writeFileSync(layout.indexPrefix(name) + ".log", "");
    expect(tree(index)).toEqual(["mailboxes/", "mailboxes/P/", "mailboxes/P/Q/", "mailboxes/P/Q/dovecot.index.log", "mailboxes/P/dovecot.index.log"]);
    deleteDboxMailboxDir(layout, "P");
    expect(tree(index)).toEqual(["mailboxes/", "mailboxes/P/", "mailboxes/P/Q/", "mailboxes/P/Q/dovecot.index.log"]);
    expect(listDboxMailboxes(mail)).toEqual(["P/Q"]);
    deleteDboxMailboxDir(layout, "P/Q");
    expect(tree(index)).toEqual(["mailboxes/"]);
    expect(tree(mail)).toEqual(["mailboxes/"]);
  });

  it("rename moves the index directory with the mail and removes the parents left empty in both trees", () => {
    createDboxMailboxDir(layout, "P/Q");
    fs.writeFileSync(layout.indexPrefix("P/Q") + ".log", "");
    renameDboxMailboxDir(layout, "P/Q", "X/Y");
    expect(tree(index)).toEqual(["mailboxes/", "mailboxes/X/", "mailboxes/X/Y/", "mailboxes/X/Y/dovecot.index.log"]);
    expect(tree(mail)).toEqual(["mailboxes/", "mailboxes/X/", "mailboxes/X/Y/", "mailboxes/X/Y/dbox-Mails/"]);
  });

  it("rename refuses a target that has an index directory left, and moves nothing", () => {
    createDboxMailboxDir(layout, "A");
    fs.mkdirSync(layout.indexDir("B"), { recursive: true });
    expect(() => renameDboxMailboxDir(layout, "A", "B")).toThrow(expect.objectContaining({ code: "ALREADY_EXISTS" }));
    expect(listDboxMailboxes(mail)).toEqual(["A"]);
    expect(fs.existsSync(layout.indexDir("A"))).toBe(true);
  });
});
