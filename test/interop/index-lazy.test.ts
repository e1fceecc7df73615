import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterEach, expect, it } from "vitest";
import { writeSampleMbox } from "../../bench/dovecot.js";
import { createOracle, describeInterop, type DovecotOracle } from "../helpers/dovecot.js";

const exec = promisify(execFile);
const bin = path.resolve(__dirname, "../../bin/mailstore.js");
const MESSAGES = 6000;
const FIELDS = "messages unseen uidnext highestmodseq";

describeInterop("a dovecot.index large enough to be read lazily, against doveadm", () => {
  let o: DovecotOracle;
  let src: string;
  afterEach(async () => {
    await o?.cleanup();
    fs.rmSync(src, { recursive: true, force: true });
  });
  const cli = async (...args: string[]) => (await exec(process.execPath, [bin, "-l", o.location, ...args], { env: { ...process.env, MAIL: "" } })).stdout;
  const ourStatus = async () => JSON.parse(await cli("mailbox", "status", "--json", FIELDS, "INBOX")) as Array<Record<string, string>>;

  it("mdbox: the engine's flag one and status read the rows they need and agree with doveadm, before and after doveadm's changes", async () => {
    o = createOracle("mdbox");
    // The mbox to import, outside the oracle's directory (the engine would make its .imap index there).
    src = fs.mkdtempSync(path.join(os.tmpdir(), "index-lazy-src-"));
    fs.mkdirSync(path.join(src, "mail"));
    writeSampleMbox(path.join(src, "inbox"), MESSAGES, 300);
    // The engine works as the owner of the mail root (doveadm's user, 65534): the mbox must be theirs too.
    for (const p of [src, path.join(src, "mail"), path.join(src, "inbox")]) fs.chownSync(p, 65534, 65534);
    await cli("import", `mbox:${src}/mail:INBOX=${src}/inbox`);
    const index = path.join(o.root, "mailboxes", "INBOX", "dbox-Mails", "dovecot.index");
    // Past the size under which readCheckpoint reads a file whole.
    expect(fs.statSync(index).size).toBeGreaterThan(64 * 1024);

    await cli("flags", "add", "\\Flagged", "mailbox", "INBOX", "uid", "3001");
    await o.chownRoot();
    expect(await o.fetchFlags("INBOX", ["uid", "3001"])).toEqual([{ uid: 3001, flags: ["\\Flagged"] }]);
    expect(await ourStatus()).toEqual([await o.mailboxStatus(FIELDS, "INBOX")]);

    // doveadm's changes, then the engine reads its files (dovecot.index as doveadm left it).
    await o.flags("add", "\\Seen", ["mailbox", "INBOX", "uid", "5000:5100"]);
    await o.expunge(["mailbox", "INBOX", "uid", "10:20"]);
    const theirs = await o.mailboxStatus(FIELDS, "INBOX");
    expect(theirs.unseen).toBe(String(MESSAGES - 11 - 101));
    expect(await ourStatus()).toEqual([theirs]);
    const ours = JSON.parse(await cli("fetch", "--json", "uid flags", "mailbox", "INBOX", "uid", "3001,5050")) as Array<{ uid: string; flags: string[] }>;
    expect(ours.map((r) => [r.uid, r.flags])).toEqual([["3001", ["\\Flagged"]], ["5050", ["\\Seen"]]]);
  });
});
