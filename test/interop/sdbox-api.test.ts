import * as fs from "node:fs";
import { firstValueFrom, filter, take, takeWhile, toArray } from "rxjs";
import { afterEach, beforeEach, expect, it } from "vitest";
import { openStorage, recordAt, messageCount, flagNames, type ChangeBatch, type Storage } from "../../src/index.js";
import { createOracle, describeInterop, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";
import { doveadmFetch, engineFetch } from "../helpers/fetch-compare.js";

describeInterop("sdbox through the public API, against Dovecot", () => {
  let o: DovecotOracle;
  let storage: Storage;
  beforeEach(() => {
    o = createOracle("sdbox");
    storage = openStorage(o.location);
  });
  afterEach(async () => {
    await storage.close();
    await o.cleanup();
  });

  it("engine writes, doveadm fetches the same; Dovecot continues, the engine reads on; interleaved", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.transaction()
      .append({ body: sampleMessage(1), flags: ["\\Seen", "$Label1"] })
      .append({ body: sampleMessage(2).replace(/\n/g, "\r\n") })
      .append({ body: sampleMessage(3), flags: ["\\Draft"] })
      .commit();
    await box.transaction().flags([{ uid1: 2, uid2: 3 }], "add", ["\\Flagged", "work"]).commit();
    await box.transaction().flags([{ uid1: 1, uid2: 1 }], "replace", ["\\Answered"]).expunge([{ uid1: 3, uid2: 3 }]).commit();
    await o.chownRoot();
    const theirs = await doveadmFetch(o, "INBOX", { modseq: true });
    const ours = await engineFetch(storage, "INBOX", { modseq: true });
    expect(theirs.map((m) => m.uid)).toEqual([1, 2]);
    expect(ours.map(({ modseq, ...m }) => m)).toEqual(theirs.map(({ modseq, ...m }) => m));
    expect(theirs[0].flags).toEqual(["\\Answered"]);
    expect(theirs[1].text).toBe(sampleMessage(2)); // stored with LF, as Dovecot stores it

    // Dovecot continues ...
    await o.save("INBOX", sampleMessage(4));
    await o.flags("add", "\\Seen dovecot-kw", "mailbox INBOX uid 1:*");
    await o.expunge("mailbox INBOX uid 2");
    // ... the engine continues Dovecot's log ...
    const box2 = await storage.openMailbox("INBOX");
    await box2.transaction().append({ body: sampleMessage(5) }).flags([{ uid1: 4, uid2: 4 }], "remove", ["\\Seen"]).commit();
    await o.chownRoot();
    // ... and both agree, modseqs included.
    const after = await doveadmFetch(o, "INBOX", { modseq: true });
    expect(after.map((m) => m.uid)).toEqual([1, 4, 5]);
    expect(await engineFetch(storage, "INBOX", { modseq: true })).toEqual(after);
    const status = await o.mailboxStatus("messages uidnext uidvalidity highestmodseq", "INBOX");
    expect(Number(status.uidnext)).toBe(6);
    expect(Number(status.uidvalidity)).toBe(box2.uidValidity);
    expect(String(box2.state.logModseq)).toBe(status.highestmodseq);
    o.assertNoStderrProblems();
  });

  it("Dovecot writes, the engine reads the same (copy, move, expunge, keywords)", async () => {
    await o.mailboxCreate("Sub/Child");
    for (let i = 1; i <= 5; i++) await o.save("INBOX", sampleMessage(i));
    await o.flags("add", "\\Seen $Label1 foo", "mailbox INBOX uid 1:3");
    await o.flags("remove", "foo", "mailbox INBOX uid 2");
    await o.copy("Sub/Child", "mailbox INBOX uid 1");
    await o.move("Sub/Child", "mailbox INBOX uid 4");
    await o.expunge("mailbox INBOX uid 2");
    expect(await storage.listMailboxes()).toEqual(["INBOX", "Sub", "Sub/Child"].filter((n) => n !== "Sub"));
    for (const mailbox of ["INBOX", "Sub/Child"]) expect(await engineFetch(storage, mailbox, { modseq: true })).toEqual(await doveadmFetch(o, mailbox, { modseq: true }));
  });

  it("change stream: a flag change and an append made by doveadm reach a subscriber within 1 s; resuming yields exactly what was missed", async () => {
    const box = await storage.openMailbox("INBOX");
    const first = await box.transaction().append({ body: sampleMessage(1) }).commit();
    await o.chownRoot();
    const got = firstValueFrom(box.changes().pipe(filter((b) => b.changes.length > 0), take(2), toArray()));
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    await o.flags("add", "\\Flagged", "mailbox INBOX uid 1");
    await o.save("INBOX", sampleMessage(2));
    const batches: ChangeBatch[] = await got;
    expect(Date.now() - t0).toBeLessThan(1000 + 200);
    const kinds = batches.flatMap((b) => b.changes.map((c) => c.type));
    expect(kinds).toContain("flags");
    expect(kinds).toContain("append");

    // Resume from the end of our first commit: exactly the transactions after it, none twice.
    const endPos = (await box.refresh(), box.position);
    const resumed = await firstValueFrom(box.changes(first.end).pipe(
      takeWhile((b) => b.end.fileSeq !== endPos.fileSeq || b.end.offset !== endPos.offset, true), toArray()));
    const positions = resumed.map((b) => `${b.position.fileSeq}:${b.position.offset}`);
    expect(new Set(positions).size).toBe(positions.length);
    expect(resumed.every((b) => b.position.offset >= first.end.offset)).toBe(true);
    expect(resumed.filter((b) => b.changes.length > 0).map((b) => b.changes[0].type)).toEqual(batches.map((b) => b.changes[0].type));
  });
});

describeInterop("mailstore watch --json against doveadm", () => {
  it("prints doveadm's flag change and append as JSON lines within a second", async () => {
    const { spawn } = await import("node:child_process");
    const path = await import("node:path");
    const o = createOracle("sdbox");
    try {
      const storage = openStorage(o.location);
      const box = await storage.openMailbox("INBOX");
      await box.transaction().append({ body: sampleMessage(1) }).commit();
      await storage.close();
      await o.chownRoot();
      const bin = path.resolve(__dirname, "../../bin/mailstore.js");
      const child = spawn(process.execPath, [bin, "-l", o.location, "watch", "--json", "-m", "INBOX"], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      // Its ready line (stderr): subscribed, so doveadm's changes from now on are seen.
      await new Promise<void>((resolve, reject) => {
        let err = "";
        child.stderr.on("data", (d) => {
          err += d;
          if (err.includes("watching INBOX from ")) resolve();
        });
        child.once("exit", (code) => reject(new Error(`watch exited (${code}) before it was ready: ${err}`)));
      });
      const t0 = Date.now();
      await o.flags("add", "\\Flagged", "mailbox INBOX uid 1");
      await o.save("INBOX", sampleMessage(2));
      const lines = await new Promise<string[]>((resolve, reject) => {
        const deadline = setTimeout(() => reject(new Error(`timed out; got: ${out}`)), 3000);
        const check = () => {
          const batches = out.split("\n").filter(Boolean).map((l) => JSON.parse(l));
          const kinds = batches.flatMap((b: ChangeBatch) => b.changes.map((c) => c.type));
          if (kinds.includes("flags") && kinds.includes("append")) {
            clearTimeout(deadline);
            resolve(out.split("\n").filter(Boolean));
          } else setTimeout(check, 20);
        };
        check();
      });
      expect(Date.now() - t0).toBeLessThan(1000 + 100);
      expect(lines.length).toBeGreaterThanOrEqual(2);
      child.kill("SIGINT");
    } finally {
      await o.cleanup();
    }
  });
});
