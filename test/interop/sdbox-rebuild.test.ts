import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, expect, it } from "vitest";
import { openStorage } from "../../src/index.js";
import { createOracle, describeInterop, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";

function dropIndexes(root: string, keepBackup = false): void {
  for (const e of fs.readdirSync(root, { withFileTypes: true, recursive: true } as { withFileTypes: true; recursive: true })) {
    const p = path.join((e as unknown as { parentPath?: string; path: string }).parentPath ?? (e as unknown as { path: string }).path, e.name);
    if (e.isFile() && e.name.startsWith("dovecot.index") && !(keepBackup && e.name === "dovecot.index.backup")) fs.rmSync(p);
  }
}

describeInterop("sdbox rebuild (force-resync) against Dovecot's", () => {
  const oracles: DovecotOracle[] = [];
  afterEach(async () => { for (const o of oracles.splice(0)) await o.cleanup(); });

  it("after losing every index, the engine's rebuild gives what Dovecot's own rebuild gives (uids, GUIDs, flags lost alike)", async () => {
    const a = createOracle("sdbox");
    const b = createOracle("sdbox");
    oracles.push(a, b);
    await a.mailboxCreate("Sub");
    for (let i = 1; i <= 4; i++) await a.save(i % 2 ? "INBOX" : "Sub", sampleMessage(i));
    await a.flags("add", "\\Seen $Label1", "mailbox INBOX all");
    await a.expunge("mailbox INBOX uid 1");
    fs.rmSync(b.root, { recursive: true });
    fs.cpSync(a.root, b.root, { recursive: true });
    dropIndexes(a.root);
    dropIndexes(b.root);
    const storage = openStorage(a.location);
    await storage.forceResync("*");
    await storage.close();
    await a.chownRoot();
    await b.chownRoot();
    await b.forceResync("*");
    for (const mailbox of ["INBOX", "Sub"]) {
      const ours = await a.fetch("uid guid flags", ["mailbox", mailbox, "all"]);
      const theirs = await b.fetch("uid guid flags", ["mailbox", mailbox, "all"]);
      expect(ours).toEqual(theirs);
      expect(ours.length).toBeGreaterThan(0);
    }
    a.assertNoStderrProblems();
  });

  it("with the main index and log broken, flags come back from dovecot.index.backup; Dovecot's force-resync finds every engine-written message", async () => {
    const o = createOracle("sdbox");
    oracles.push(o);
    const storage = openStorage(o.location);
    const box = await storage.openMailbox("INBOX");
    await box.transaction().append({ body: sampleMessage(1), flags: ["\\Seen", "work"] }).append({ body: sampleMessage(2), flags: ["\\Flagged"] }).commit();
    await storage.close();
    await o.chownRoot();
    // Dovecot writes dovecot.index twice, so a backup holding these flags exists.
    await o.flags("add", "\\Answered", "mailbox INBOX uid 1", { extraSettings: { mail_index_rewrite_min_log_bytes: "1", mail_index_rewrite_max_log_bytes: "1" } });
    await o.flags("remove", "\\Answered", "mailbox INBOX uid 1", { extraSettings: { mail_index_rewrite_min_log_bytes: "1", mail_index_rewrite_max_log_bytes: "1" } });
    const dir = o.mailboxIndexDir("INBOX");
    expect(fs.existsSync(path.join(dir, "dovecot.index.backup"))).toBe(true);
    const before = await o.fetch("uid guid flags", ["mailbox", "INBOX", "all"]);
    fs.writeFileSync(path.join(dir, "dovecot.index.log"), Buffer.alloc(64, 0xee));
    fs.rmSync(path.join(dir, "dovecot.index"));
    const again = openStorage(o.location);
    await again.forceResync("INBOX");
    await again.close();
    await o.chownRoot();
    const after = await o.fetch("uid guid flags", ["mailbox", "INBOX", "all"]);
    expect(after.map((m) => [m.uid, m.guid])).toEqual(before.map((m) => [m.uid, m.guid]));
    expect(after[0].flags).toContain("\\Seen");
    expect(after[0].flags).toContain("work");
    expect(after[1].flags).toContain("\\Flagged");
    // And Dovecot's own rebuild over engine-written files finds every message.
    dropIndexes(o.root);
    await o.forceResync("*");
    expect((await o.fetch("uid guid", ["mailbox", "INBOX", "all"])).map((m) => m.guid)).toEqual(before.map((m) => m.guid));
  });
});

describeInterop("sdbox alternate storage", () => {
  it("altmove by the engine: doveadm still fetches every message and sees it in ALT; Dovecot's altmove is read by the engine", async () => {
    const o = createOracle("sdbox");
    try {
      const alt = path.join(o.dir, "alt");
      fs.mkdirSync(alt);
      const location = `${o.location}:ALT=${alt}`;
      for (let i = 1; i <= 3; i++) await o.run(["save", "-m", "INBOX"], { input: sampleMessage(i), extraSettings: { mail_location: location } });
      const storage = openStorage(location);
      await storage.altMove("INBOX", [1, 2], true);
      await storage.close();
      expect(fs.existsSync(path.join(alt, "mailboxes/INBOX/dbox-Mails/u.1"))).toBe(true);
      expect(fs.existsSync(path.join(o.mailboxIndexDir("INBOX"), "u.1"))).toBe(false);
      await o.chownRoot();
      const texts = await o.run(["fetch", "text", "mailbox", "INBOX", "all"], { extraSettings: { mail_location: location } });
      for (let i = 1; i <= 3; i++) expect(texts.stdout).toContain(`Body of message ${i}.`);
      // Dovecot moves uid 3 to ALT; the engine reads it from there.
      await o.run(["altmove", "mailbox", "INBOX", "uid", "3"], { extraSettings: { mail_location: location } });
      const again = openStorage(location);
      const box = await again.openMailbox("INBOX");
      expect(Buffer.from(await box.readMessage(3)).toString()).toContain("Body of message 3.");
      expect(Buffer.from(await box.readMessage(1)).toString()).toContain("Body of message 1.");
      await again.close();
    } finally {
      await o.cleanup();
    }
  });
});
