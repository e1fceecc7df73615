/**
 * force-resync on Maildir++ against Dovecot 2.3: rebuilding lost or broken
 * indexes from the files (shared cases in test/helpers/files-resync.ts), and
 * a rename made outside that the quick check cannot see, logged by the
 * resync as an EXTERNAL change that a change-stream subscriber receives.
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

describeInterop("Maildir force-resync, against Dovecot", () => {
  sharedResyncCases("maildir");

  const oracles: DovecotOracle[] = [];
  afterEach(async () => {
    for (const o of oracles.splice(0)) await o.cleanup();
  });

  it("(d) a file renamed outside with new/'s mtime put back: refresh's quick check misses it, force-resync logs it and a subscriber sees it", async () => {
    const o = createOracle("maildir");
    oracles.push(o);
    for (let i = 1; i <= 2; i++) await o.save("INBOX", sampleMessage(i));
    // More than a second after the last change to new/, so the next scan records it as settled.
    await new Promise((r) => setTimeout(r, 2100));
    const storage = openStorage(o.location);
    const box = await storage.openMailbox("INBOX");
    try {
      await box.refresh();
      const newDir = path.join(o.root, "new");
      const ref = path.join(o.dir, "new-mtime");
      fs.writeFileSync(ref, "");
      execFileSync("touch", ["-r", newDir, ref]);
      const base = fs.readFileSync(path.join(o.root, "dovecot-uidlist"), "utf8").split("\n").find((l) => l.startsWith("2 "))!.split(":")[1];
      fs.renameSync(path.join(newDir, base), path.join(newDir, `${base}:2,FT`));
      execFileSync("touch", ["-r", ref, newDir]);
      await box.refresh();
      expect(lookupUid(box.state, 2)!.flags & MailFlag.FLAGGED).toBe(0);

      const watch = nextBatch(box, (b) => b.changes.some((c) => c.type === "flags"));
      await storage.forceResync("INBOX");
      const batch = await watch.seen;
      watch.stop();
      const change = batch.changes.find((c) => c.type === "flags")!;
      expect(change).toMatchObject({ type: "flags", uid1: 2, uid2: 2 });
      expect(change.type === "flags" && [...change.add].sort()).toEqual(["\\Deleted", "\\Flagged"]);
      expect(lookupUid(box.state, 2)!.flags & (MailFlag.FLAGGED | MailFlag.DELETED)).toBe(MailFlag.FLAGGED | MailFlag.DELETED);
    } finally {
      await storage.close();
    }
    await o.chownRoot();
    expect((await doveadmFetch(o, "INBOX")).map((m) => m.flags)).toEqual([[], ["\\Deleted", "\\Flagged"]]);
    o.assertNoStderrProblems();
  });
});
