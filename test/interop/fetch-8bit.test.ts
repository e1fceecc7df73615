import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterEach, expect, it } from "vitest";
import { createOracle, describeInterop, type DovecotOracle } from "../helpers/dovecot.js";

const exec = promisify(execFile);
const bin = path.resolve(__dirname, "../../bin/mailstore.js");

describeInterop("fetch of 8-bit and control bytes, byte for byte as doveadm prints them", () => {
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
});
