import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterEach, expect, it } from "vitest";
import { createOracle, describeInterop, type DovecotOracle } from "../helpers/dovecot.js";

const exec = promisify(execFile);
const bin = path.resolve(__dirname, "../../bin/mailstore.js");

describeInterop("fetch output byte for byte as doveadm prints it", () => {
  let o: DovecotOracle;
  afterEach(async () => o?.cleanup());

  for (const format of ["sdbox", "maildir"] as const) {
    it(`${format}: plain and --json output of a Latin-1 message with control characters equal doveadm's (-f json)`, async () => {
      o = createOracle(format);
      const body = Buffer.from('Subject: caf\xe9\n\nna\xefve \xe9t\xe9 \x01\x7f tab\there "q" \\ / end \u00e9\n', "latin1");
      await o.save("INBOX", Buffer.concat([body, Buffer.from("utf-8: \u00e9t\u00e9 \u2603\n", "utf8")]));
      const ours = async (...args: string[]) => (await exec(process.execPath, [bin, "-l", o.location, ...args], { encoding: "buffer" })).stdout;
      const json = await ours("fetch", "--json", "uid text", "mailbox", "INBOX", "all");
      const theirsJson = (await o.runBuffer(["-f", "json", "fetch", "uid text", "mailbox", "INBOX", "all"])).stdout;
      expect(json.toString("latin1")).toBe(theirsJson.toString("latin1").trimEnd() + "\n");
      const text = await ours("fetch", "text", "mailbox", "INBOX", "all");
      const theirsText = (await o.runBuffer(["fetch", "text", "mailbox", "INBOX", "all"])).stdout;
      expect(text.toString("latin1")).toBe(theirsText.toString("latin1"));
    });
  }

  it("several messages: the separators between them (a form feed only before a record that starts with a field other than text) and the field order, for each field list", async () => {
    o = createOracle("mdbox");
    for (let i = 1; i <= 3; i++) await o.save("INBOX", `Subject: m${i}\n\nbody ${i}\n`);
    await o.flags("add", "\\Seen", "mailbox INBOX uid 2");
    for (const fields of ["text", "uid", "uid text", "text uid", "flags text uid", "uid flags", "guid size.physical text"]) {
      const ours = (await exec(process.execPath, [bin, "-l", o.location, "fetch", fields, "mailbox", "INBOX", "all"], { encoding: "buffer" })).stdout;
      const theirs = (await o.runBuffer(["fetch", fields, "mailbox", "INBOX", "all"])).stdout;
      // doveadm adds \Recent to flags, which the engine never reports.
      const withoutRecent = theirs.toString("latin1").replace(/^flags: (.*)$/gm, (_, list: string) => `flags: ${list.split(" ").filter((f) => f && f !== "\\Recent").join(" ")}`);
      expect(ours.toString("latin1"), fields).toBe(withoutRecent);
    }
  });
});
