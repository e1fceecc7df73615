/**
 * The uidlist dotlock is the one Dovecot takes: while the engine holds it,
 * a doveadm command that must sync (flags) waits, and continues once it is
 * released; doveadm save, which only tries the lock, leaves its file for a
 * later sync — which the engine then logs with the next UID.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect, it } from "vitest";
import { flagNames, lookupUid, messageCount } from "../../src/index.js";
import type { MaildirMailboxBackend } from "../../src/drivers/maildir/mailbox-backend.js";
import { createOracle, describeInterop, sampleMessage } from "../helpers/dovecot.js";
import { openMaildirStorage } from "../unit/drivers/maildir/open-storage.js";

describeInterop("Maildir uidlist lock shared with Dovecot", () => {
  it("doveadm waits for the engine's lock; a save made without it is picked up by the next sync", async () => {
    const o = createOracle("maildir", { autoChown: true });
    const storage = openMaildirStorage(o.location);
    try {
      const box = await storage.openMailbox("INBOX");
      await box.transaction().append({ body: sampleMessage(1) }).commit();
      o.chownRootSync();
      const ctx = (box.backend as MaildirMailboxBackend).ctx;
      let flagsDone = false;
      let flagging: Promise<void> | undefined;
      await ctx.withUidlistLock(1000, async () => {
        expect(fs.existsSync(path.join(o.root, "dovecot-uidlist.lock"))).toBe(true);
        flagging = o.flags("add", "\\Seen", "mailbox INBOX uid 1").then(() => void (flagsDone = true));
        await o.save("INBOX", sampleMessage(2)); // only tries the lock: the file goes to new/ without a UID
        await new Promise((r) => setTimeout(r, 700));
        expect(flagsDone).toBe(false);
      });
      await flagging;
      expect(flagsDone).toBe(true);
      const state = await box.refresh();
      expect(messageCount(state)).toBe(2);
      expect(flagNames(lookupUid(state, 1)!.flags)).toEqual(["\\Seen"]);
      expect(lookupUid(state, 2)).toBeDefined();
      const rows = await o.fetch("uid flags", ["mailbox", "INBOX", "all"]);
      expect(rows.map((r) => Number(r.uid))).toEqual([1, 2]);
      await box.close();
      o.assertNoStderrProblems();
    } finally {
      await storage.close();
      await o.cleanup();
    }
  });
});
