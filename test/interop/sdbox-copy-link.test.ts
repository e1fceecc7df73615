import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterEach, expect, it } from "vitest";
import { createOracle, describeInterop, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";

const exec = promisify(execFile);
const bin = path.resolve(__dirname, "../../bin/mailstore.js");

describeInterop("sdbox copy is a hard link, as Dovecot's", () => {
  let o: DovecotOracle;
  afterEach(async () => o?.cleanup());

  it("doveadm's copy and the engine's both link the u.N file; doveadm reads the engine's copy, also after the original is expunged", async () => {
    o = createOracle("sdbox");
    await o.mailboxCreate("ByDovecot");
    await o.mailboxCreate("ByEngine");
    await o.save("INBOX", sampleMessage(1));
    await o.save("INBOX", sampleMessage(2));
    await o.copy("ByDovecot", "mailbox INBOX uid 1");
    await exec(process.execPath, [bin, "-l", o.location, "copy", "ByEngine", "mailbox", "INBOX", "uid", "2"]);
    const file = (box: string, uid: number) => fs.statSync(path.join(o.mailboxIndexDir(box), `u.${uid}`));
    expect(file("ByDovecot", 1).ino).toBe(file("INBOX", 1).ino);
    expect(file("ByEngine", 1).ino).toBe(file("INBOX", 2).ino);
    expect(file("INBOX", 2).nlink).toBe(2);
    await o.expunge("mailbox INBOX all");
    const fetched = await o.fetch("uid guid text", ["mailbox", "ByEngine", "all"]);
    expect(fetched.map((m) => m.uid)).toEqual(["1"]);
    expect(fetched[0].text).toContain("Subject:");
    expect(file("ByEngine", 1).nlink).toBe(1);
    o.assertNoStderrProblems();
  });
});
