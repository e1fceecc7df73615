/**
 * force-resync on mbox against Dovecot 2.3: rebuilding lost or broken
 * indexes from the file's X-IMAPbase / X-UID / Status / X-Status /
 * X-Keywords headers (shared cases in test/helpers/files-resync.ts), and a
 * flag changed in the file outside with its size and mtime kept, which the
 * quick check cannot see: the resync logs it as an EXTERNAL change that a
 * change-stream subscriber receives.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, expect, it } from "vitest";
import { lookupUid, openStorage } from "../../src/index.js";
import { MailFlag } from "../../src/log/types.js";
import { createOracle, describeInterop, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";
import { nextBatch, sharedResyncCases } from "../helpers/files-resync.js";
import { doveadmFetch } from "../unit/drivers/mdbox/oracle-helpers.js";

describeInterop("mbox force-resync, against Dovecot", () => {
  sharedResyncCases("mbox");

  const oracles: DovecotOracle[] = [];
  afterEach(async () => {
    for (const o of oracles.splice(0)) await o.cleanup();
  });

  it("(d) X-Status rewritten outside with size and mtime kept: refresh's quick check misses it, force-resync logs it and a subscriber sees it", async () => {
    const o = createOracle("mbox");
    oracles.push(o);
    for (let i = 1; i <= 2; i++) await o.save("INBOX", sampleMessage(i));
    await o.flags("add", "\\Flagged", "mailbox INBOX uid 2");
    const storage = openStorage(o.location);
    const box = await storage.openMailbox("INBOX");
    try {
      await box.refresh();
      expect(lookupUid(box.state, 2)!.flags & MailFlag.FLAGGED).toBe(MailFlag.FLAGGED);
      const inbox = path.join(o.root, "inbox");
      const ref = path.join(o.dir, "inbox-mtime");
      fs.writeFileSync(ref, "");
      execFileSync("touch", ["-r", inbox, ref]);
      const text = fs.readFileSync(inbox, "latin1");
      expect(text.match(/^X-Status: F$/gm)).toHaveLength(1);
      fs.writeFileSync(inbox, text.replace(/^X-Status: F$/m, "X-Status: A"), "latin1");
      execFileSync("touch", ["-r", ref, inbox]);
      await box.refresh();
      expect(lookupUid(box.state, 2)!.flags & MailFlag.FLAGGED).toBe(MailFlag.FLAGGED);

      const watch = nextBatch(box, (b) => b.changes.some((c) => c.type === "flags"));
      await storage.forceResync("INBOX");
      const batch = await watch.seen;
      watch.stop();
      const change = batch.changes.find((c) => c.type === "flags")!;
      expect(change).toMatchObject({ type: "flags", uid1: 2, uid2: 2 });
      expect(change.type === "flags" && change.add).toContain("\\Answered");
      expect(change.type === "flags" && change.remove).toContain("\\Flagged");
      expect(lookupUid(box.state, 2)!.flags & (MailFlag.FLAGGED | MailFlag.ANSWERED)).toBe(MailFlag.ANSWERED);
    } finally {
      await storage.close();
    }
    await o.chownRoot();
    expect((await doveadmFetch(o, "INBOX")).map((m) => m.flags)).toEqual([[], ["\\Answered"]]);
    o.assertNoStderrProblems();
  });
});
