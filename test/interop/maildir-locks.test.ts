/**
 * The uidlist dotlock is the one Dovecot takes: while the engine holds it,
 * a doveadm command that must sync (flags) waits, and continues once it is
 * released; doveadm save, which only tries the lock, leaves its file for a
 * later sync — which the engine then logs with the next UID.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect, it } from "vitest";
import { flagNames, lookupUid, messageCount, toRanges } from "../../src/index.js";
import type { MaildirMailboxBackend } from "../../src/drivers/maildir/mailbox-backend.js";
import { createOracle, describeInterop, sampleMessage } from "../helpers/dovecot.js";
import { startReadyWorker } from "../helpers/kill-worker.js";
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

/**
 * A worker that takes dovecot-keywords' lock and replaces the file with a
 * big content (so that a kill lands mid-replace). It runs the compiled engine.
 */
const REPLACE_WORKER = `
import { takeDotlock } from "${path.resolve(__dirname, "../..")}/dist/src/drivers/dotlock.js";
const lock = await takeDotlock(process.argv[2], { timeoutMs: 5000 });
process.stdout.write("ready\\n");
lock.replaceTarget(Buffer.alloc(128 * 1024 * 1024, 0x61), { fsync: true });
process.stdout.write("replaced\\n");
`;

describeInterop("Maildir dotlocks after a kill", () => {
  it("a holder killed while replacing dovecot-keywords leaves a lock naming its pid, which doveadm breaks at once", async () => {
    const o = createOracle("maildir", { autoChown: true });
    try {
      await o.save("INBOX", sampleMessage(1));
      await o.flags("add", "$Before", ["mailbox", "INBOX", "all"]);
      const keywordsFile = path.join(o.root, "dovecot-keywords");
      const keywordsBefore = fs.readFileSync(keywordsFile, "latin1");
      const workerPath = path.join(o.dir, "replace-worker.mjs");
      fs.writeFileSync(workerPath, REPLACE_WORKER);
      const { child, exited } = await startReadyWorker(workerPath, [keywordsFile]);
      // Watch the lock until the replacement is being written, then kill: the
      // lock must name the worker the whole time (a lock holding content names
      // no pid, and Dovecot waits two minutes to break such a lock).
      const owner = `${child.pid}:${os.hostname()}`;
      const lockPath = `${keywordsFile}.lock`;
      const replacement = path.join(o.root, `.dovecot-keywords.${os.hostname()}.${child.pid}.new`);
      const seen = new Set<string>();
      const deadline = Date.now() + 10_000;
      while (!fs.existsSync(replacement) && Date.now() < deadline) seen.add(fs.existsSync(lockPath) ? fs.readFileSync(lockPath, "latin1").slice(0, 40) : "(none)");
      expect(fs.existsSync(replacement), "the worker began writing its replacement").toBe(true);
      child.kill("SIGKILL");
      await exited;
      seen.add(fs.readFileSync(lockPath, "latin1").slice(0, 40));
      expect([...seen]).toEqual([owner]);
      expect(fs.readFileSync(keywordsFile, "latin1")).toBe(keywordsBefore);

      const t0 = Date.now();
      await o.flags("add", "$After", ["mailbox", "INBOX", "all"]);
      expect(Date.now() - t0, "doveadm broke the dead worker's lock without waiting").toBeLessThan(10_000);
      expect(fs.existsSync(lockPath)).toBe(false);
      expect((await o.fetchFlags("INBOX")).map((r) => r.flags.sort())).toEqual([["$After", "$Before"]]);
      // The engine's next keyword write sweeps the dead worker's replacement file.
      const storage = openMaildirStorage(o.location);
      try {
        const box = await storage.openMailbox("INBOX");
        await box.transaction().flags(toRanges([1]), "add", ["$Engine"]).commit();
        await box.close();
      } finally {
        await storage.close();
      }
      expect(fs.existsSync(replacement)).toBe(false);
      expect((await o.fetchFlags("INBOX")).map((r) => r.flags.sort())).toEqual([["$After", "$Before", "$Engine"]]);
      o.assertNoStderrProblems();
    } finally {
      await o.cleanup();
    }
  }, 60_000);
});
