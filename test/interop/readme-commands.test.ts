import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, expect, it } from "vitest";
import { createOracle, describeInterop, type DovecotOracle } from "../helpers/dovecot.js";

const run = promisify(execFile);
const bin = path.resolve(__dirname, "../../bin/mailstore.js");

describeInterop("the README's main command", () => {
  const oracles: DovecotOracle[] = [];
  afterAll(async () => { for (const o of oracles) await o.cleanup(); });

  it("`mailstore demo` runs on the embedded default location (mdbox under ./mail), and Dovecot reads the result", async () => {
    const o = createOracle("mdbox");
    oracles.push(o);
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-demo-"));
    const env = { ...process.env, MAIL: "" };
    const { stdout } = await run(process.execPath, [bin, "demo"], { cwd, env });
    expect(stdout).toContain(`Location: mdbox:${fs.realpathSync(cwd)}/mail`);
    expect(stdout).toMatch(/What a subscriber .* received:\n(.*"type":"append".*\n)+/);
    expect(stdout).toContain("The transaction log those changes became");
    expect(stdout).toMatch(/UIDVALIDITY \d+, UIDNEXT 7, 5 messages \(2 seen, 0 deleted\), HIGHESTMODSEQ \d+/);
    fs.cpSync(path.join(cwd, "mail"), o.root, { recursive: true });
    await o.chownRoot();
    const inbox = await o.fetch("uid flags", ["mailbox", "INBOX", "all"]);
    expect(inbox.map((m) => m.uid)).toEqual(["1", "2", "4", "5", "6"]);
    expect(inbox[1].flags).toContain("$Label1");
    expect((await o.fetch("uid", ["mailbox", "Archive", "all"])).length).toBe(1);
    fs.rmSync(cwd, { recursive: true, force: true });

    // A login shell's $MAIL (the real spool) is not where the demo writes.
    const cwd2 = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-demo-"));
    const spool = path.join(cwd2, "spool-of-the-user");
    const second = await run(process.execPath, [bin, "demo"], { cwd: cwd2, env: { ...process.env, MAIL: spool } });
    expect(second.stdout).toContain(`Location: mdbox:${fs.realpathSync(cwd2)}/mail`);
    expect(fs.existsSync(spool)).toBe(false);
    fs.rmSync(cwd2, { recursive: true, force: true });
  });
});
