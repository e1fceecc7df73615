import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { appendMailboxLog, MailboxLogType, MAILBOX_LOG_ROTATE_SIZE } from "../../../src/drivers/mailbox-change-log.js";
import { setSubscription } from "../../../src/drivers/subscriptions.js";
import { LockTimeoutError, SubscriptionsCorruptedError } from "../../../src/shared/errors.js";
import { openStorage } from "../../../src/api/storage.js";

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-subs-")); });
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** dovecot.mailbox.log records as [type, id hex]. */
function logRecords(file: string): Array<[number, string]> {
  const data = fs.readFileSync(file);
  const out: Array<[number, string]> = [];
  for (let off = 0; off + 24 <= data.length; off += 24) out.push([data[off], data.subarray(off + 4, off + 20).toString("hex")]);
  return out;
}
const nameId = (vname: string) => createHash("sha1").update(vname, "utf8").digest("hex").slice(0, 32);

describe("subscriptions through Storage", () => {
  it("a missing file is no subscriptions; subscribe, list, unsubscribe; one log record per change", async () => {
    const storage = openStorage(`sdbox:${dir}`);
    expect(await storage.listSubscriptions()).toEqual([]);
    expect(await storage.subscribe("inbox")).toBe(true);
    expect(await storage.subscribe("Nope/Not/There")).toBe(true);
    expect(await storage.subscribe("INBOX")).toBe(false);
    expect(await storage.unsubscribe("other")).toBe(false);
    expect(await storage.listSubscriptions()).toEqual(["INBOX", "Nope/Not/There"]);
    expect(fs.readFileSync(path.join(dir, "subscriptions"), "utf8")).toBe("V\t2\n\nINBOX\nNope\tNot\tThere\n");
    expect(await storage.unsubscribe("Inbox")).toBe(true);
    expect(await storage.listSubscriptions()).toEqual(["Nope/Not/There"]);
    expect(logRecords(path.join(dir, "dovecot.mailbox.log"))).toEqual([
      [MailboxLogType.Subscribe, nameId("INBOX")],
      [MailboxLogType.Subscribe, nameId("Nope/Not/There")],
      [MailboxLogType.Unsubscribe, nameId("INBOX")],
    ]);
    expect(fs.existsSync(path.join(dir, "subscriptions.lock"))).toBe(false);
    await expect(storage.subscribe("a/")).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await storage.close();
  });

  it("keeps each format's file where Dovecot does", async () => {
    const mbox = openStorage(`mbox:${dir}/mbox:INBOX=${dir}/mbox/inbox:INDEX=${dir}/mbox-idx`);
    await mbox.subscribe("a/b");
    expect(fs.readFileSync(path.join(dir, "mbox", ".subscriptions"), "utf8")).toBe("V\t2\n\na\tb\n");
    expect(logRecords(path.join(dir, "mbox-idx", ".imap", "dovecot.mailbox.log"))).toEqual([[4, nameId("a/b")]]);
    const maildir = openStorage(`maildir:${dir}/Maildir:CONTROL=${dir}/ctl:INDEX=${dir}/idx`);
    await maildir.subscribe("a/b");
    expect(fs.readFileSync(path.join(dir, "ctl", "subscriptions"), "utf8")).toBe("V\t2\n\na\tb\n");
    // Maildir++ shows "a/b" as "a.b", and Dovecot hashes what it shows.
    expect(logRecords(path.join(dir, "idx", "dovecot.mailbox.log"))).toEqual([[4, nameId("a.b")]]);
    await expect(maildir.subscribe("a.b")).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    const utf8 = openStorage(`maildir:${dir}/M8:UTF-8`);
    await utf8.subscribe("Grü/x");
    expect(fs.readFileSync(path.join(dir, "M8", "subscriptions"), "utf8")).toBe("V\t2\n\nGrü\tx\n");
    const mdbox = openStorage(`mdbox:${dir}/mdbox`);
    await mdbox.subscribe("Grü/x");
    expect(fs.readFileSync(path.join(dir, "mdbox", "subscriptions"), "utf8")).toBe("V\t2\n\nGr&APw-\tx\n");
    for (const s of [mbox, maildir, utf8, mdbox]) await s.close();
  });

  it("bad content is a typed error naming the file, and the file is left alone", async () => {
    const file = path.join(dir, "subscriptions");
    const bad = Buffer.from("V\t2\n\nINBOX\nx\0y\n", "latin1");
    fs.writeFileSync(file, bad);
    const storage = openStorage(`sdbox:${dir}`);
    await expect(storage.listSubscriptions()).rejects.toBeInstanceOf(SubscriptionsCorruptedError);
    await expect(storage.listSubscriptions()).rejects.toThrow(file);
    await expect(storage.subscribe("new")).rejects.toMatchObject({ code: "SUBSCRIPTIONS_CORRUPTED", path: file, offset: 12 });
    expect(fs.readFileSync(file)).toEqual(bad);
    expect(fs.existsSync(`${file}.lock`)).toBe(false);
    fs.rmSync(file);
    fs.mkdirSync(file);
    await expect(storage.listSubscriptions()).rejects.toMatchObject({ code: "SUBSCRIPTIONS_CORRUPTED", path: file });
    await storage.close();
  });
});

describe("subscriptions lock", () => {
  const loc = () => ({ file: path.join(dir, "subscriptions"), mailboxLogDir: dir, separator: "/", utf8: false });

  it("waits for a held dotlock and gives up with LockTimeoutError", async () => {
    fs.writeFileSync(path.join(dir, "subscriptions.lock"), ""); // Dovecot's lock files are empty
    await expect(setSubscription(loc(), "x", true, { lockTimeoutMs: 150 })).rejects.toBeInstanceOf(LockTimeoutError);
    expect(fs.existsSync(path.join(dir, "subscriptions"))).toBe(false);
  });

  it("overrides a lock untouched for 30 s, as Dovecot does", async () => {
    const lock = path.join(dir, "subscriptions.lock");
    fs.writeFileSync(lock, "");
    const old = new Date(Date.now() - 31_000);
    fs.utimesSync(lock, old, old);
    expect(await setSubscription(loc(), "x", true, { lockTimeoutMs: 1000 })).toBe(true);
    expect(fs.readFileSync(path.join(dir, "subscriptions"), "utf8")).toBe("V\t2\n\nx\n");
    expect(fs.existsSync(lock)).toBe(false);
  });

  it("does not take the lock when nothing changes", async () => {
    fs.writeFileSync(path.join(dir, "subscriptions"), "V\t2\n\nx\n");
    fs.writeFileSync(path.join(dir, "subscriptions.lock"), "");
    expect(await setSubscription(loc(), "x", true, { lockTimeoutMs: 50 })).toBe(false);
    expect(await setSubscription(loc(), "y", false, { lockTimeoutMs: 50 })).toBe(false);
  });

  it("serializes concurrent changes in one process", async () => {
    const all = Array.from({ length: 20 }, (_, i) => `box${i}`);
    await Promise.all(all.map((n) => setSubscription(loc(), n, true)));
    const text = fs.readFileSync(path.join(dir, "subscriptions"), "utf8");
    expect(text.split("\n").slice(2, -1).sort()).toEqual([...all].sort());
  });
});

describe("dovecot.mailbox.log appends", () => {
  it("writes 24-byte records (big-endian time) and rotates to .2 at 4096 bytes", () => {
    const file = path.join(dir, "dovecot.mailbox.log");
    const id = Buffer.alloc(16, 0xab);
    appendMailboxLog(dir, MailboxLogType.Unsubscribe, id, 0x6b042b25);
    expect(fs.readFileSync(file).toString("hex")).toBe(`05000000${"ab".repeat(16)}6b042b25`);
    fs.writeFileSync(file, Buffer.alloc(MAILBOX_LOG_ROTATE_SIZE - 24));
    appendMailboxLog(dir, MailboxLogType.Subscribe, id, 1);
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.statSync(`${file}.2`).size).toBe(MAILBOX_LOG_ROTATE_SIZE);
    appendMailboxLog(dir, MailboxLogType.Subscribe, id, 2);
    expect(fs.statSync(file).size).toBe(24);
  });
});
