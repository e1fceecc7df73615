/**
 * Changes made to a Maildir outside the engine and Dovecot — a mail client
 * renaming a file to change its flags, an MDA dropping a file into new/, a
 * file deleted — become EXTERNAL log records on the next refresh, visible
 * in mailbox.changes(); Dovecot then reads the same mailbox state.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { firstValueFrom, filter, take, toArray } from "rxjs";
import { afterEach, beforeEach, expect, it } from "vitest";
import { flagNames, lookupUid, messageCount, recordAt, type ChangeBatch, type Mailbox, type Storage } from "../../src/index.js";
import { createOracle, describeInterop, parseFlags, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";
import { openMaildirStorage } from "../unit/drivers/maildir/open-storage.js";
import { TransactionLog } from "../../src/log/log.js";
import { MailFlag } from "../../src/log/types.js";

function findFile(root: string, uidBase: string): { dir: string; name: string } {
  for (const dir of ["new", "cur"]) {
    const name = fs.readdirSync(path.join(root, dir)).find((n) => n.startsWith(uidBase));
    if (name) return { dir, name };
  }
  throw new Error(`no file for ${uidBase}`);
}

function baseOf(root: string, uid: number): string {
  const line = fs.readFileSync(path.join(root, "dovecot-uidlist"), "utf8").split("\n").slice(1).find((l) => l.startsWith(`${uid} `));
  return line!.slice(line!.indexOf(":") + 1);
}

/** Collects the change batches of the next `count` non-empty transactions. */
function nextChanges(box: Mailbox, count: number): Promise<ChangeBatch[]> {
  return firstValueFrom(box.changes().pipe(filter((b) => b.changes.length > 0), take(count), toArray()));
}

async function expectDovecotAgrees(o: DovecotOracle, box: Mailbox): Promise<void> {
  await o.chownRoot();
  const rows = await o.fetch("uid flags", ["mailbox", "INBOX", "all"]);
  const state = box.state;
  const ours = [];
  for (let seq = 1; seq <= messageCount(state); seq++) {
    const r = recordAt(state, seq)!;
    ours.push({ uid: r.uid, flags: [...flagNames(r.flags), ...r.keywords].sort() });
  }
  expect(rows.map((r) => ({ uid: Number(r.uid), flags: parseFlags(r.flags).sort() }))).toEqual(ours);
  o.assertNoStderrProblems();
}

describeInterop("Maildir changes made outside the engine", () => {
  let o: DovecotOracle;
  let storage: Storage;
  let box: Mailbox;
  beforeEach(async () => {
    o = createOracle("maildir");
    for (let i = 1; i <= 3; i++) await o.save("INBOX", sampleMessage(i));
    await o.flags("add", "$Label1", "mailbox INBOX uid 3");
    storage = openMaildirStorage(o.location);
    box = await storage.openMailbox("INBOX");
    await box.refresh();
  });
  afterEach(async () => {
    await storage.close();
    await o.cleanup();
  });

  it("a file renamed to add S becomes an EXTERNAL flag change in the log and the change stream", async () => {
    const got = nextChanges(box, 1);
    const { dir, name } = findFile(o.root, baseOf(o.root, 2));
    fs.renameSync(path.join(o.root, dir, name), path.join(o.root, dir, `${name}:2,S`));
    await box.refresh();
    const [batch] = await got;
    expect(batch.external).toBe(true);
    // The record replaces every flag; the batch says what changed (effects), not what the record restated.
    expect(batch.changes).toEqual([{ type: "flags", uid1: 2, uid2: 2, add: ["\\Seen"], remove: [] }]);
    expect(flagNames(lookupUid(box.state, 2)!.flags)).toEqual(["\\Seen"]);
    await expectDovecotAgrees(o, box);
  });

  it("keyword letters and flags changed together; letters without a dovecot-keywords line become unknown-<n>", async () => {
    const { dir, name } = findFile(o.root, baseOf(o.root, 3)); // has $Label1 = letter a
    fs.renameSync(path.join(o.root, dir, name), path.join(o.root, dir, `${name.split(":")[0]}:2,FRc`));
    await box.refresh();
    expect(lookupUid(box.state, 3)!.keywords).toEqual(["unknown-2"]);
    expect(flagNames(lookupUid(box.state, 3)!.flags)).toEqual(["\\Answered", "\\Flagged"]);
    expect(fs.readFileSync(path.join(o.root, "dovecot-keywords"), "utf8")).toBe("0 $Label1\n2 unknown-2\n");
    await expectDovecotAgrees(o, box);
  });

  it("a file dropped into new/ (or cur/) gets the next UID and an EXTERNAL append", async () => {
    const got = nextChanges(box, 1);
    fs.writeFileSync(path.join(o.root, "new", "1700000000.M1P1.mda"), sampleMessage(10));
    fs.writeFileSync(path.join(o.root, "cur", "1700000001.M2P1.mda:2,FS"), sampleMessage(11));
    await box.refresh();
    const [batch] = await got;
    expect(batch.changes).toEqual([{ type: "append", uid: 4, flags: [] }, { type: "append", uid: 5, flags: ["\\Flagged", "\\Seen"] }]);
    expect(fs.readFileSync(path.join(o.root, "dovecot-uidlist"), "utf8")).toMatch(/\n4 :1700000000\.M1P1\.mda\n5 :1700000001\.M2P1\.mda\n$/);
    expect(Buffer.from(await box.readMessage(4)).toString()).toBe(sampleMessage(10));
    expect((await box.backend.messageInfo(box.state, 5)).guid).toBe("1700000001.M2P1.mda");
    await expectDovecotAgrees(o, box);
    expect(Number((await o.mailboxStatus("uidnext", "INBOX")).uidnext)).toBe(6);
  });

  it("a deleted file becomes an EXTERNAL expunge", async () => {
    const got = nextChanges(box, 1);
    const { dir, name } = findFile(o.root, baseOf(o.root, 1));
    fs.rmSync(path.join(o.root, dir, name));
    await box.refresh();
    const [batch] = await got;
    expect(batch.changes).toEqual([{ type: "expunge", uid1: 1, uid2: 1 }]);
    expect(messageCount(box.state)).toBe(2);
    await expectDovecotAgrees(o, box);
  });

  it("nothing changed: refresh writes nothing", async () => {
    await new Promise((r) => setTimeout(r, 2100)); // past Dovecot's 1-second "dirty" window
    await box.refresh(); // may rewrite the maildir header once (now clean)
    const size = fs.statSync(path.join(o.root, "dovecot.index.log")).size;
    for (let i = 0; i < 3; i++) await box.refresh();
    expect(fs.statSync(path.join(o.root, "dovecot.index.log")).size).toBe(size);
  });

  it("the engine's flag changes reach the file names before commit() returns, and the tail moves", async () => {
    await box.transaction().flags([{ uid1: 1, uid2: 2 }], "add", ["\\Seen", "work"]).commit();
    expect(box.state.header.logFileTailOffset).toBe(box.state.header.logFileHeadOffset);
    for (const uid of [1, 2]) expect(findFile(o.root, baseOf(o.root, uid)).name).toMatch(/:2,Sb$/);
    expect(fs.readFileSync(path.join(o.root, "dovecot-keywords"), "utf8")).toBe("0 $Label1\n1 work\n");
    await expectDovecotAgrees(o, box);
    // Dovecot found nothing left to apply: it wrote no flag records of its own.
    const log = await o.dumpLog(o.root);
    expect(log.records.filter((r) => r.type === "flag-update" && r.external)).toHaveLength(0);
  });

  it("a rename racing with a pending flag change is merged, as Dovecot merges it", async () => {
    // Another process logged \Seen for uid 2 and has not renamed the file yet (a Dovecot session mid-sync).
    const other = TransactionLog.open(box.backend.indexPrefix);
    await other.append([{ type: "flag-update", external: false, sync: false, updates: [{ uid1: 2, uid2: 2, addFlags: MailFlag.SEEN, removeFlags: 0, modseqIncFlag: 0 }] }]);
    await other.close();
    const { dir, name } = findFile(o.root, baseOf(o.root, 2));
    fs.renameSync(path.join(o.root, dir, name), path.join(o.root, dir, `${name}:2,F`));
    await box.refresh();
    expect(findFile(o.root, baseOf(o.root, 2)).name).toMatch(/:2,FS$/);
    expect(flagNames(lookupUid(box.state, 2)!.flags)).toEqual(["\\Flagged", "\\Seen"]);
    await expectDovecotAgrees(o, box);
  });
});
