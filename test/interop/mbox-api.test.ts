import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { openStorage, recordAt, messageCount, flagNames, type Storage } from "../../src/index.js";
import { createOracle, describeInterop, parseFlags, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";
import { doveadmFetch, engineFetch } from "../helpers/fetch-compare.js";

const FROM_BODY = sampleMessage(7, { body: "First line\nFrom the start of a line\n>From quoted\nFrom someone@example.com Thu Nov 29 22:33:52 2001\nlast\n" });

describeInterop("mbox through the public API, against Dovecot", () => {
  let o: DovecotOracle;
  let storage: Storage;
  beforeEach(() => {
    o = createOracle("mbox");
    storage = openStorage(o.location);
  });
  afterEach(async () => {
    await storage.close();
    await o.cleanup();
  });

  it("engine writes, doveadm fetches the same; Dovecot continues, the engine reads on", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.refresh();
    await box.transaction()
      .append({ body: sampleMessage(1), flags: ["\\Seen", "$Label1"] })
      .append({ body: sampleMessage(2).replace(/\n/g, "\r\n") })
      .append({ body: FROM_BODY, flags: ["\\Draft"] })
      .commit();
    await box.transaction().flags([{ uid1: 2, uid2: 3 }], "add", ["\\Flagged", "work"]).commit();
    await box.refresh();
    await box.transaction().flags([{ uid1: 1, uid2: 1 }], "replace", ["\\Answered"]).expunge([{ uid1: 2, uid2: 2 }]).commit();
    await box.refresh();
    await o.chownRoot();
    const theirs = await doveadmFetch(o, "INBOX");
    const ours = await engineFetch(storage, "INBOX");
    expect(theirs.map((m) => m.uid)).toEqual([1, 3]);
    expect(ours).toEqual(theirs);
    expect(theirs[0].flags).toEqual(["\\Answered"]);
    expect(theirs[1].text).toBe(FROM_BODY);

    await o.save("INBOX", sampleMessage(4));
    await o.flags("add", "\\Seen dovecot-kw", "mailbox INBOX uid 1:*");
    await o.expunge("mailbox INBOX uid 1");
    const box2 = await storage.openMailbox("INBOX");
    await box2.refresh();
    await box2.transaction().append({ body: sampleMessage(5) }).flags([{ uid1: 4, uid2: 4 }], "remove", ["\\Seen"]).commit();
    await box2.refresh();
    await o.chownRoot();
    const after = await doveadmFetch(o, "INBOX");
    expect(after.map((m) => m.uid)).toEqual([3, 4, 5]);
    expect(await engineFetch(storage, "INBOX")).toEqual(after);
    o.assertNoStderrProblems();
  });

  it("expunges that move messages by the index's offsets (expunge-in-sync.ts): doveadm reads the same, and carries on", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.refresh();
    const tx = box.transaction();
    for (let i = 1; i <= 12; i++) tx.append({ body: i === 6 ? FROM_BODY : sampleMessage(i), flags: i % 3 === 0 ? ["\\Seen", "work"] : [] });
    await tx.commit();
    await box.refresh();
    // Nothing pending: the index-driven path; the first message goes too (message 3 takes X-IMAPbase over).
    await box.transaction().expunge([{ uid1: 1, uid2: 2 }, { uid1: 7, uid2: 8 }, { uid1: 12, uid2: 12 }]).commit();
    await box.refresh();
    await o.chownRoot();
    const theirs = await doveadmFetch(o, "INBOX");
    expect(theirs.map((m) => m.uid)).toEqual([3, 4, 5, 6, 9, 10, 11]);
    expect(await engineFetch(storage, "INBOX")).toEqual(theirs);
    expect(theirs.find((m) => m.uid === 6)!.text).toBe(FROM_BODY);
    expect(theirs.find((m) => m.uid === 9)!.flags).toEqual(["\\Seen", "work"]);

    await o.save("INBOX", sampleMessage(13));
    await o.expunge("mailbox INBOX uid 4");
    const box2 = await storage.openMailbox("INBOX");
    await box2.refresh();
    await box2.transaction().expunge([{ uid1: 5, uid2: 5 }]).commit();
    await box2.refresh();
    await o.chownRoot();
    const after = await doveadmFetch(o, "INBOX");
    expect(after.map((m) => m.uid)).toEqual([3, 6, 9, 10, 11, 13]);
    expect(await engineFetch(storage, "INBOX")).toEqual(after);
    o.assertNoStderrProblems();
  });

  it("Dovecot writes (From_ lines in bodies, flags, keywords, copy, move, expunge), the engine reads the same", async () => {
    await o.mailboxCreate("Sub/Child");
    for (let i = 1; i <= 5; i++) await o.save("INBOX", i === 3 ? FROM_BODY : sampleMessage(i));
    await o.flags("add", "\\Seen $Label1 foo", "mailbox INBOX uid 1:3");
    await o.flags("remove", "foo", "mailbox INBOX uid 2");
    await o.flags("add", "\\Answered \\Flagged \\Draft \\Deleted", "mailbox INBOX uid 5");
    await o.copy("Sub/Child", "mailbox INBOX uid 1");
    await o.move("Sub/Child", "mailbox INBOX uid 3");
    await o.expunge("mailbox INBOX uid 2");
    expect(await storage.listMailboxes()).toEqual(["INBOX", "Sub/Child"]);
    for (const mailbox of ["INBOX", "Sub/Child"]) expect(await engineFetch(storage, mailbox)).toEqual(await doveadmFetch(o, mailbox));
    const child = await engineFetch(storage, "Sub/Child");
    expect(child.map((m) => m.text)).toContain(FROM_BODY);
    // ... and the engine continues on Dovecot's files.
    const box = await storage.openMailbox("Sub/Child");
    await box.refresh();
    await box.transaction().flags([{ uid1: 1, uid2: 2 }], "add", ["engine-kw"]).commit();
    await box.refresh();
    await box.close();
    await o.chownRoot();
    expect(await engineFetch(storage, "Sub/Child")).toEqual(await doveadmFetch(o, "Sub/Child"));
    o.assertNoStderrProblems();
  });

  it("a message an MDA appends (no X-UID) becomes an append with the next UID; a message removed by another program an expunge", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.refresh();
    await box.transaction().append({ body: sampleMessage(1) }).append({ body: sampleMessage(2) }).commit();
    const inbox = path.join(o.root, "inbox");
    const before = box.state;
    // Nothing changed: refresh writes nothing.
    const pos = box.position;
    await box.refresh();
    expect(box.position).toEqual(pos);
    // An MDA appends a raw message (From_ line, no Dovecot headers, Status: O).
    fs.appendFileSync(inbox, "From mda@example.com  Mon Nov 23 10:00:00 2026\nFrom: x@y\nSubject: delivered\nStatus: O\n\nhello\nFrom the body\n\n");
    const st = await box.refresh();
    expect(messageCount(st)).toBe(messageCount(before) + 1);
    expect(recordAt(st, 3)!.uid).toBe(3);
    expect(Buffer.from(await box.readMessage(3)).toString()).toBe("From: x@y\nSubject: delivered\n\nhello\nFrom the body\n");
    await o.chownRoot();
    expect(await doveadmFetch(o, "INBOX")).toEqual(await engineFetch(storage, "INBOX"));
    // Another program deletes message 1 (rewrites the file without it).
    const data = fs.readFileSync(inbox, "latin1");
    const second = data.indexOf("\nFrom ", 1) + 1;
    fs.writeFileSync(inbox, data.slice(second));
    const st2 = await box.refresh();
    expect([1, 2].map((s) => recordAt(st2, s)!.uid)).toEqual([2, 3]);
    expect(messageCount(st2)).toBe(2);
    await box.close();
    await o.chownRoot();
    expect(await doveadmFetch(o, "INBOX")).toEqual(await engineFetch(storage, "INBOX"));
    o.assertNoStderrProblems();
  });

  it("a save with a new keyword that goes before an MDA's message: Dovecot reading the file without the index keeps the keyword", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.refresh();
    await box.transaction().append({ body: sampleMessage(1) }).commit();
    // Delivered behind the index's back: the next save goes before it (UIDs grow through the file).
    fs.appendFileSync(path.join(o.root, "inbox"), "From mda@example.com  Mon Nov 23 10:00:00 2026\nFrom: x@y\nSubject: delivered\n\nhello\n\n");
    await box.transaction().append({ body: sampleMessage(2), flags: ["\\Seen", "$Work"] }).commit();
    await box.close();
    await o.chownRoot();
    // No index: what X-IMAPbase and X-Keywords say is all there is.
    const { stdout } = await o.run(["-f", "json", "fetch", "uid flags hdr.subject", "mailbox", "INBOX", "all"], { extraSettings: { mail_location: `${o.location}:INDEX=MEMORY` } });
    const rows = (JSON.parse(stdout) as Array<Record<string, string>>).map((r) => ({ subject: r["hdr.subject"], flags: parseFlags(r.flags).sort() }));
    expect(rows).toEqual([
      { subject: `Test message 1`, flags: [] },
      { subject: `Test message 2`, flags: ["$Work", "\\Seen"] },
      { subject: "delivered", flags: [] },
    ]);
    o.assertNoStderrProblems();
  });

  it("a keyword new to the mailbox saved after Dovecot's pseudo message: Dovecot reading the file without the index keeps it", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.refresh();
    await box.transaction().append({ body: sampleMessage(1) }).commit();
    await box.transaction().expunge([{ uid1: 1, uid2: 1 }]).commit();
    await box.transaction().append({ body: sampleMessage(2), flags: ["$Work"] }).commit();
    await box.close();
    await o.chownRoot();
    const { stdout } = await o.run(["-f", "json", "fetch", "uid flags", "mailbox", "INBOX", "all"], { extraSettings: { mail_location: `${o.location}:INDEX=MEMORY` } });
    expect((JSON.parse(stdout) as Array<Record<string, string>>).map((r) => ({ uid: r.uid, flags: parseFlags(r.flags) }))).toEqual([{ uid: "2", flags: ["$Work"] }]);
    o.assertNoStderrProblems();
  });

  it("engine copies and moves between mbox folders; doveadm sees the same", async () => {
    await storage.createMailbox("Archive/2024");
    const inbox = await storage.openMailbox("INBOX");
    await inbox.refresh();
    await inbox.transaction().append({ body: sampleMessage(1), flags: ["\\Seen", "k1"] }).append({ body: FROM_BODY, flags: ["\\Flagged"] }).commit();
    const archive = await storage.openMailbox("Archive/2024");
    await archive.refresh();
    await inbox.transaction().copyTo(archive, [{ uid1: 1, uid2: 2 }]);
    await inbox.transaction().expunge([{ uid1: 1, uid2: 1 }]).commit();
    await inbox.close();
    await archive.close();
    await o.chownRoot();
    expect(await o.mailboxList()).toEqual(expect.arrayContaining(["INBOX", "Archive/2024"]));
    for (const mailbox of ["INBOX", "Archive/2024"]) expect(await engineFetch(storage, mailbox)).toEqual(await doveadmFetch(o, mailbox));
    expect((await doveadmFetch(o, "Archive/2024")).map((m) => m.flags)).toEqual([["\\Seen", "k1"], ["\\Flagged"]]);
    o.assertNoStderrProblems();
  });
});
