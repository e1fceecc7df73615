import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { messageCount, openStorage, type Storage } from "../../../../src/index.js";

let dir: string;
let storage: Storage;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-sdbox-leftovers-"));
  storage = openStorage(`sdbox:${dir}/mail`);
});
afterEach(async () => {
  await storage.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

it("a u.N file a killed save left past next_uid is adopted before the next commit, which then takes the UIDs after it", async () => {
  const box = await storage.openMailbox("INBOX");
  await box.transaction().append({ body: "Subject: one\n\n1\n" }).commit();
  const mails = path.join(dir, "mail/mailboxes/INBOX/dbox-Mails");
  // What a save killed between writing its files and logging them leaves.
  fs.copyFileSync(path.join(mails, "u.1"), path.join(mails, "u.2"));
  fs.copyFileSync(path.join(mails, "u.1"), path.join(mails, "u.3"));
  const { appendedUids } = await box.transaction().append({ body: "Subject: four\n\n4\n" }).commit();
  expect(appendedUids).toEqual([4]);
  expect(messageCount(box.state)).toBe(4);
  expect(Buffer.from(await box.readMessage(3)).toString()).toBe("Subject: one\n\n1\n");
  expect(Buffer.from(await box.readMessage(4)).toString()).toBe("Subject: four\n\n4\n");
});

it("an expunged message's file is gone once its expunge is committed", async () => {
  const box = await storage.openMailbox("INBOX");
  await box.transaction().append({ body: "Subject: one\n\n1\n" }).append({ body: "Subject: two\n\n2\n" }).commit();
  const mails = path.join(dir, "mail/mailboxes/INBOX/dbox-Mails");
  await box.transaction().expunge([{ uid1: 1, uid2: 1 }]).commit();
  expect(fs.existsSync(path.join(mails, "u.1"))).toBe(false);
  expect(fs.existsSync(path.join(mails, "u.2"))).toBe(true);
});

it("a copy into another sdbox mailbox is a hard link of the u.N file, as Dovecot's; the copy stays readable after the original is expunged", async () => {
  await storage.createMailbox("Archive");
  const inbox = await storage.openMailbox("INBOX");
  await inbox.transaction().append({ body: "Subject: one\n\n1\n" }).commit();
  const archive = await storage.openMailbox("Archive");
  await inbox.transaction().copyTo(archive, [{ uid1: 1, uid2: 1 }]);
  const original = fs.statSync(path.join(dir, "mail/mailboxes/INBOX/dbox-Mails/u.1"));
  const copy = fs.statSync(path.join(dir, "mail/mailboxes/Archive/dbox-Mails/u.1"));
  expect([copy.ino, copy.nlink]).toEqual([original.ino, 2]);
  await inbox.transaction().expunge([{ uid1: 1, uid2: 1 }]).commit();
  expect(fs.statSync(path.join(dir, "mail/mailboxes/Archive/dbox-Mails/u.1")).nlink).toBe(1);
  expect(Buffer.from(await archive.readMessage(1)).toString()).toBe("Subject: one\n\n1\n");
});

it("a killed copy's leftover (a u.N with another link: the original is still in its mailbox) is removed, not adopted, so that trying the copy again leaves the message there once", async () => {
  await storage.createMailbox("Archive");
  const inbox = await storage.openMailbox("INBOX");
  await inbox.transaction().append({ body: "Subject: one\n\n1\n" }).commit();
  const archive = await storage.openMailbox("Archive");
  const archiveDir = path.join(dir, "mail/mailboxes/Archive/dbox-Mails");
  // What a copy killed between linking its file and logging it leaves; and a killed save's file after it.
  fs.linkSync(path.join(dir, "mail/mailboxes/INBOX/dbox-Mails/u.1"), path.join(archiveDir, "u.1"));
  fs.copyFileSync(path.join(dir, "mail/mailboxes/INBOX/dbox-Mails/u.1"), path.join(archiveDir, "u.2"));
  const { appendedUids } = await inbox.transaction().copyTo(archive, [{ uid1: 1, uid2: 1 }]);
  expect(fs.existsSync(path.join(archiveDir, "u.1"))).toBe(false);
  // u.2 (one link: a save's) is adopted; the retried copy comes after it.
  expect(appendedUids).toEqual([3]);
  expect(messageCount(archive.state)).toBe(2);
  expect(fs.statSync(path.join(dir, "mail/mailboxes/INBOX/dbox-Mails/u.1")).nlink).toBe(2);
});

it("a killed save's leftover past a gap of requested UIDs (which adoption does not reach) is replaced by the save that takes its UID", async () => {
  const box = await storage.openMailbox("INBOX");
  await box.transaction().append({ body: "Subject: one\n\n1\n" }).commit();
  const mails = path.join(dir, "mail/mailboxes/INBOX/dbox-Mails");
  // An import with gaps killed after writing u.5 (next_uid still 2): nothing at u.2, so adoption stops there.
  fs.copyFileSync(path.join(mails, "u.1"), path.join(mails, "u.5"));
  const { appendedUids } = await box.transaction().append({ body: "Subject: five\n\n5\n", uid: 5 }).commit();
  expect(appendedUids).toEqual([5]);
  expect(Buffer.from(await box.readMessage(5)).toString()).toBe("Subject: five\n\n5\n");
  expect(messageCount(box.state)).toBe(2);
});

it("force-resync with a readable log does not bring back what a kill left: an expunged message's file (killed before its unlink), a copy's unlogged link; a killed save's file is kept", async () => {
  await storage.createMailbox("Other");
  const inbox = await storage.openMailbox("INBOX");
  await inbox.transaction().append({ body: "Subject: one\n\n1\n" }).append({ body: "Subject: two\n\n2\n" }).commit();
  const mails = path.join(dir, "mail/mailboxes/INBOX/dbox-Mails");
  const kept = fs.readFileSync(path.join(mails, "u.1"));
  await inbox.transaction().expunge([{ uid1: 1, uid2: 1 }]).commit();
  // The expunge was committed, then (as if killed before its unlink) the file is back.
  fs.writeFileSync(path.join(mails, "u.1"), kept);
  const otherDir = path.join(dir, "mail/mailboxes/Other/dbox-Mails");
  const other = await storage.openMailbox("Other");
  await other.refresh();
  fs.linkSync(path.join(mails, "u.2"), path.join(otherDir, "u.1")); // a copy killed before its commit
  fs.copyFileSync(path.join(mails, "u.2"), path.join(otherDir, "u.2")); // a save killed before its commit
  await storage.forceResync("*");
  await inbox.refresh();
  await other.refresh();
  expect([messageCount(inbox.state), messageCount(other.state)]).toEqual([1, 1]);
  expect(fs.existsSync(path.join(mails, "u.1"))).toBe(false);
  expect(fs.readdirSync(otherDir).filter((f) => f.startsWith("u."))).toEqual(["u.2"]);
  expect(Buffer.from(await other.readMessage(2)).toString()).toBe("Subject: two\n\n2\n");
});

it("a message copied from another storage (an import) is written, not linked: stores never share a file", async () => {
  const inbox = await storage.openMailbox("INBOX");
  await inbox.transaction().append({ body: "Subject: one\n\n1\n" }).commit();
  const other = openStorage(`sdbox:${dir}/other`);
  try {
    const target = await other.openMailbox("INBOX");
    const fetched = [];
    for await (const f of inbox.fetch([1], ["body", "guid", "receivedTime"])) fetched.push(f);
    const [m] = fetched;
    await target.transaction().append({ body: m.body, guid: m.guid, receivedDate: new Date(m.receivedTime * 1000) }).commit();
    expect(fs.statSync(path.join(dir, "other/mailboxes/INBOX/dbox-Mails/u.1")).nlink).toBe(1);
    expect(fs.statSync(path.join(dir, "mail/mailboxes/INBOX/dbox-Mails/u.1")).nlink).toBe(1);
  } finally {
    await other.close();
  }
});
