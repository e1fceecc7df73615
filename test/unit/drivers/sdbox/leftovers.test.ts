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
