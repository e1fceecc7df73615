import * as fs from "node:fs";
import { afterEach, beforeEach, expect, it } from "vitest";
import { openStorage, type Storage } from "../../src/index.js";
import { createOracle, describeInterop, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";
import { doveadmFetch, engineFetch, expectCleanMap, mdboxBackend } from "../unit/drivers/mdbox/oracle-helpers.js";

describeInterop("mdbox through the public API, against Dovecot", () => {
  let o: DovecotOracle;
  let storage: Storage;
  beforeEach(() => {
    o = createOracle("mdbox");
    storage = openStorage(o.location);
  });
  afterEach(async () => {
    await storage.close();
    await o.cleanup();
  });

  it("engine writes (save, flags, copy, expunge), doveadm fetches the same; the map dump is clean", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.transaction()
      .append({ body: sampleMessage(1), flags: ["\\Seen", "$Label1"] })
      .append({ body: sampleMessage(2).replace(/\n/g, "\r\n") })
      .append({ body: sampleMessage(3), flags: ["\\Draft"] })
      .commit();
    await box.transaction().flags([{ uid1: 2, uid2: 3 }], "add", ["\\Flagged", "work"]).commit();
    await storage.createMailbox("Sub/Child");
    const child = await storage.openMailbox("Sub/Child");
    await box.transaction().copyTo(child, [{ uid1: 1, uid2: 2 }]);
    await box.transaction().expunge([{ uid1: 3, uid2: 3 }]).commit();
    await o.chownRoot();

    for (const mailbox of ["INBOX", "Sub/Child"]) {
      expect(await engineFetch(storage, mailbox)).toEqual(await doveadmFetch(o, mailbox));
    }
    const inbox = await doveadmFetch(o, "INBOX");
    expect(inbox.map((m) => m.uid)).toEqual([1, 2]);
    expect(inbox[1].text).toBe(sampleMessage(2));
    // The copy shares the data: same GUIDs, refcount 2, one stored body each.
    const copies = await doveadmFetch(o, "Sub/Child");
    expect(copies.map((m) => m.guid)).toEqual(inbox.map((m) => m.guid));
    const refs = await o.fetch("uid refcount", ["mailbox", "INBOX", "all"]);
    expect(refs.map((r) => r.refcount)).toEqual(["2", "2"]);
    const map = mdboxBackend(storage).map.refresh();
    expect(map.records.count).toBe(3);
    await expectCleanMap(o);
    // Dovecot writes on top without finding anything to repair (no "Inconsistency in map index").
    await o.save("INBOX", sampleMessage(4));
    await o.copy("Sub/Child", "mailbox INBOX uid 4");
    expect(await engineFetch(storage, "Sub/Child")).toEqual(await doveadmFetch(o, "Sub/Child"));
    o.assertNoStderrProblems();
  });

  it("Dovecot writes (save, flags, keywords, copy, move, expunge, purge), the engine reads the same", async () => {
    await o.mailboxCreate("Sub/Child");
    for (let i = 1; i <= 6; i++) await o.save("INBOX", sampleMessage(i));
    await o.flags("add", "\\Seen $Label1 foo", "mailbox INBOX uid 1:3");
    await o.flags("remove", "foo", "mailbox INBOX uid 2");
    await o.copy("Sub/Child", "mailbox INBOX uid 1");
    await o.move("Sub/Child", "mailbox INBOX uid 4");
    await o.expunge("mailbox INBOX uid 2");
    await o.purge();
    expect(await storage.listMailboxes()).toEqual(["INBOX", "Sub/Child"]);
    for (const mailbox of ["INBOX", "Sub/Child"]) expect(await engineFetch(storage, mailbox)).toEqual(await doveadmFetch(o, mailbox));
    expect((await engineFetch(storage, "INBOX")).map((m) => m.uid)).toEqual([1, 3, 5, 6]);
    o.assertNoStderrProblems();
  });

  it("both continue each other's work: engine on Dovecot's storage, Dovecot on the engine's, purges on both sides", async () => {
    for (let i = 1; i <= 3; i++) await o.save("INBOX", sampleMessage(i));
    const box = await storage.openMailbox("INBOX");
    await box.transaction().append({ body: sampleMessage(4), flags: ["\\Answered"] }).flags([{ uid1: 1, uid2: 1 }], "add", ["\\Flagged"]).commit();
    await storage.createMailbox("Archive");
    const archive = await storage.openMailbox("Archive");
    await box.transaction().copyTo(archive, [{ uid1: 2, uid2: 4 }]);
    await box.transaction().expunge([{ uid1: 2, uid2: 2 }]).commit();
    await o.chownRoot();

    // Dovecot continues: saves, flags, expunges, purge.
    await o.save("INBOX", sampleMessage(5));
    await o.flags("add", "\\Seen dovecot-kw", "mailbox INBOX uid 1:*");
    await o.expunge("mailbox Archive uid 1");
    await o.copy("Archive", "mailbox INBOX uid 5");
    await o.purge();
    // The engine reads on and continues.
    for (const mailbox of ["INBOX", "Archive"]) expect(await engineFetch(storage, mailbox)).toEqual(await doveadmFetch(o, mailbox));
    const box2 = await storage.openMailbox("INBOX");
    await box2.transaction().append({ body: sampleMessage(6) }).expunge([{ uid1: 3, uid2: 3 }]).commit();
    const result = await mdboxBackend(storage).purge();
    expect(result.corruptFileIds).toEqual([]);
    await o.chownRoot();
    for (const mailbox of ["INBOX", "Archive"]) expect(await doveadmFetch(o, mailbox)).toEqual(await engineFetch(storage, mailbox));
    expect((await doveadmFetch(o, "INBOX")).map((m) => m.uid)).toEqual([1, 4, 5, 6]);
    const status = await o.mailboxStatus("messages uidnext uidvalidity", "INBOX");
    expect(Number(status.uidvalidity)).toBe(box2.uidValidity);
    await expectCleanMap(o);
    o.assertNoStderrProblems();
  });

  it("rotation: with the same mdbox_rotate_size and mails, the engine fills m.N files exactly as Dovecot does", async () => {
    const sizes = [300, 300, 300, 200, 200, 200, 900, 50, 1000, 10, 400, 400];
    const body = (i: number) => sampleMessage(i, { minSize: sizes[i] });
    const dovecot = createOracle("mdbox", { settings: { mdbox_rotate_size: "1000" } });
    try {
      for (let i = 0; i < sizes.length; i++) await dovecot.save("INBOX", body(i));
      const theirs = openStorage(dovecot.location);
      mdboxBackend(theirs).map.refresh();
      const theirMap = mdboxBackend(theirs).map.entries();
      await theirs.close();
      mdboxBackend(storage).settings.rotateSizeBytes = 1000;
      const box = await storage.openMailbox("INBOX");
      for (let i = 0; i < sizes.length; i++) await box.transaction().append({ body: body(i) }).commit();
      const ours = mdboxBackend(storage).map.entries();
      expect(ours.map((e) => [e.fileId, e.offset, e.size])).toEqual(theirMap.map((e) => [e.fileId, e.offset, e.size]));
      expect(new Set(ours.map((e) => e.fileId)).size).toBeGreaterThan(3);
      dovecot.assertNoStderrProblems();
    } finally {
      await dovecot.cleanup();
    }
  });

  it("a large map log gets a dovecot.map.index checkpoint that Dovecot reads and continues", async () => {
    const box = await storage.openMailbox("INBOX");
    const tx = box.transaction();
    for (let i = 0; i < 5000; i++) tx.append({ body: `Subject: ${i}\n\n${i}\n` });
    await tx.commit();
    await box.transaction().expunge([{ uid1: 1, uid2: 2000 }]).commit();
    expect(fs.existsSync(`${o.storageDir()}/dovecot.map.index`)).toBe(true);
    await o.chownRoot();
    const dump = await o.dump(o.storageDir(), "index");
    expect(dump).toMatch(/messages count \.+ = 5000/);
    await o.purge();
    const status = await o.mailboxStatus("messages", "INBOX");
    expect(status.messages).toBe("3000");
    expect(mdboxBackend(storage).map.refresh().records.count).toBe(3000);
    expect(Buffer.from(await box.readMessage(5000)).toString()).toBe("Subject: 4999\n\n4999\n");
    o.assertNoStderrProblems();
  });
});
