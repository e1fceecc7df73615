/**
 * The Maildir driver through Mailbox, without Dovecot: what lands on disk,
 * crash and rollback leftovers, the uidlist lock, copies.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { MaildirStorageOptions } from "../../../../src/drivers/maildir/storage-backend.js";
import { MaildirStorageBackend } from "../../../../src/drivers/maildir/storage-backend.js";
import { LockTimeoutError, lookupUid, messageCount, flagNames } from "../../../../src/index.js";
import { Mailbox } from "../../../../src/api/mailbox.js";
import { TransactionLog } from "../../../../src/log/log.js";

const MSG = "From: a@example.com\nSubject: hi\n\nbody\n";

describe("Maildir driver (engine only)", () => {
  let root: string;
  const open: Mailbox[] = [];
  beforeEach(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-maildir-"))));
  afterEach(async () => {
    for (const b of open.splice(0)) await b.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  async function mailbox(name = "INBOX", opts: MaildirStorageOptions = {}): Promise<Mailbox> {
    const storage = new MaildirStorageBackend(root, { fsync: false, ...opts });
    if (!(await storage.mailboxExists(name))) await storage.createMailbox(name);
    const backend = storage.openMailbox(name);
    const isNew = !fs.existsSync(backend.indexPrefix + ".log");
    const box = Mailbox.open(name, backend, { fsync: "never", createWithUidValidity: isNew ? await storage.nextUidValidity() : undefined });
    open.push(box);
    return box;
  }

  const files = (dir = root) => ["new", "cur"].flatMap((d) => fs.readdirSync(path.join(dir, d)).map((n) => `${d}/${n}`)).sort();
  const uidlistLines = (dir = root) => fs.readFileSync(path.join(dir, "dovecot-uidlist"), "utf8").split("\n").slice(1, -1);

  it("saves as Dovecot does: tmp/ → new/ or cur/ with sizes and flags in the name, uidlist lines, LF bodies", async () => {
    const box = await mailbox();
    const r = await box.transaction().append({ body: MSG.replace(/\n/g, "\r\n") }).append({ body: MSG, flags: ["\\Seen", "$Junk"] }).commit();
    expect(r.appendedUids).toEqual([1, 2]);
    const [inNew, inCur] = [files().filter((f) => f.startsWith("new/")), files().filter((f) => f.startsWith("cur/"))];
    expect(inNew[0]).toMatch(new RegExp(`^new/\\d+\\.M\\d+P${process.pid}\\.[^,:]+,S=${MSG.length},W=${MSG.length + 4}$`));
    expect(inCur[0]).toMatch(/,S=\d+,W=\d+:2,Sa$/);
    expect(fs.readdirSync(path.join(root, "tmp"))).toEqual([]);
    expect(uidlistLines().map((l) => l.split(" ")[0])).toEqual(["1", "2"]);
    expect(Buffer.from(await box.readMessage(1)).toString()).toBe(MSG);
    const info = await box.backend.messageInfo(box.state, 1);
    expect(info.guid).toBe(inNew[0].slice(4));
    expect(info.physicalSize).toBe(MSG.length);
  });

  it("a crash between the uidlist and the log leaves a file the next sync logs with its UID", async () => {
    const box = await mailbox();
    await box.transaction().append({ body: MSG }).commit();
    // The driver writes file and uidlist line; the log append never happens.
    await box.backend.saveMessages(box.state, [{ body: Buffer.from(MSG), flags: 0x02, keywords: [] }], [2]);
    expect(messageCount(box.state)).toBe(1);
    const after = await box.refresh();
    expect(messageCount(after)).toBe(2);
    expect(flagNames(lookupUid(after, 2)!.flags)).toEqual(["\\Flagged"]);
  });

  it("a rolled-back save leaves nothing; stale uidlist lines at the next UID are dropped by the next save", async () => {
    const box = await mailbox();
    const prepared = await box.backend.saveMessages(box.state, [{ body: Buffer.from(MSG), flags: 0, keywords: [] }], [1]);
    await prepared.rollback();
    expect(files()).toEqual([]);
    expect(uidlistLines()).toEqual([]);
    fs.appendFileSync(path.join(root, "dovecot-uidlist"), "1 :ghost.M1P1.h\n");
    await box.transaction().append({ body: MSG }).commit();
    expect(uidlistLines()).toHaveLength(1);
    expect(uidlistLines()[0]).toMatch(/^1 :\d+\.M/);
  });

  it("a save that cannot get the uidlist lock fails with LockTimeoutError and leaves nothing behind", async () => {
    const box = await mailbox("INBOX", { saveLockTimeoutMs: 100, syncLockTimeoutMs: 50 });
    fs.writeFileSync(path.join(root, "dovecot-uidlist.lock"), `1:${os.hostname()}`);
    await expect(box.transaction().append({ body: MSG }).commit()).rejects.toBeInstanceOf(LockTimeoutError);
    expect(files()).toEqual([]);
    expect(fs.readdirSync(path.join(root, "tmp"))).toEqual([]);
    expect(messageCount(await box.refresh())).toBe(0);
  });

  it("a sync leaves the work to whoever holds the uidlist lock, and does it once the lock is free", async () => {
    const box = await mailbox("INBOX", { syncLockTimeoutMs: 50 });
    fs.writeFileSync(path.join(root, "new", "1.M1P1.mda"), MSG);
    fs.writeFileSync(path.join(root, "dovecot-uidlist.lock"), `1:${os.hostname()}`);
    expect(messageCount(await box.refresh())).toBe(0);
    fs.rmSync(path.join(root, "dovecot-uidlist.lock"));
    expect(messageCount(await box.refresh())).toBe(1);
  });

  it("expunge unlinks and keeps uidlist lines until fewer than 75 % are alive, as Dovecot", async () => {
    const box = await mailbox();
    const tx = box.transaction();
    for (let i = 0; i < 8; i++) tx.append({ body: `${MSG}${i}\n` });
    await tx.commit();
    await box.transaction().expunge([{ uid1: 3, uid2: 3 }]).commit();
    expect(files()).toHaveLength(7);
    expect(uidlistLines()).toHaveLength(8);
    await box.transaction().expunge([{ uid1: 4, uid2: 4 }]).commit();
    expect(uidlistLines().map((l) => Number(l.split(" ")[0]))).toEqual([1, 2, 5, 6, 7, 8]);
    expect(messageCount(await box.refresh())).toBe(6);
  });

  it("a copy keeps the source file's name (its GUID), as Dovecot's hard-link copy does", async () => {
    const src = await mailbox();
    const dst = await mailbox("Archive/2024");
    await src.transaction().append({ body: MSG, flags: ["\\Seen"] }).commit();
    await src.transaction().copyTo(dst, [{ uid1: 1, uid2: 1 }]);
    const srcName = files()[0].slice(4);
    const dstDir = path.join(root, ".Archive.2024");
    expect(files(dstDir)).toEqual([`cur/${srcName}`]);
    expect((await dst.backend.messageInfo(dst.state, 1)).guid).toBe(srcName.split(":")[0]);
    // A second copy cannot reuse the name: a new one, with the GUID in the uidlist.
    await src.transaction().copyTo(dst, [{ uid1: 1, uid2: 1 }]);
    expect(uidlistLines(dstDir)[1]).toMatch(new RegExp(`^2 G${srcName.split(":")[0].replace(/[.]/g, "\\.")} :`));
    expect((await dst.backend.messageInfo(dst.state, 2)).guid).toBe(srcName.split(":")[0]);
  });

  it("a mailbox whose index has no UIDVALIDITY yet (doveadm mailbox create) gets the uidlist's with the first save", async () => {
    const storage = new MaildirStorageBackend(root, { fsync: false });
    await storage.createMailbox("INBOX");
    fs.writeFileSync(path.join(root, "dovecot-uidlist"), "3 V777 N1 G0123456789abcdef0123456789abcdef\n");
    const backend = storage.openMailbox("INBOX");
    // What `doveadm mailbox create` logs: only the cache extension.
    const log = TransactionLog.open(backend.indexPrefix, { create: {} });
    await log.append([
      { type: "ext-intro", external: true, sync: false, intros: [{ extId: 0xffffffff, resetId: 0, hdrSize: 0, recordSize: 4, recordAlign: 4, flags: 1, name: "cache" }] },
      { type: "ext-reset", external: true, sync: false, newResetId: 1, preserveData: 0 },
    ]);
    await log.close();
    const box = Mailbox.open("INBOX", backend, { fsync: "never" });
    open.push(box);
    await box.transaction().append({ body: MSG }).commit();
    expect(box.state.header.uidValidity).toBe(777);
  });

  it("a new index takes the UIDVALIDITY and UIDs of an existing dovecot-uidlist", async () => {
    fs.mkdirSync(path.join(root, "cur"), { recursive: true });
    fs.mkdirSync(path.join(root, "new"));
    fs.mkdirSync(path.join(root, "tmp"));
    fs.writeFileSync(path.join(root, "cur", "5.M1P1.h,S=3,W=3:2,S"), "x\n\n");
    fs.writeFileSync(path.join(root, "dovecot-uidlist"), "3 V555 N8 G0123456789abcdef0123456789abcdef\n7 :5.M1P1.h,S=3,W=3\n");
    const box = await mailbox();
    const state = await box.refresh();
    expect(state.header.uidValidity).toBe(555);
    expect(lookupUid(state, 7)?.flags).toBe(0x08);
    expect(state.header.nextUid).toBe(8);
  });

  it("a base name seen twice, or none at all, is renamed to a fresh name in new/ and gets its own UID", async () => {
    const box = await mailbox();
    fs.writeFileSync(path.join(root, "new", "9.M1P1.h,S=4,W=5"), "one\n");
    fs.writeFileSync(path.join(root, "cur", "9.M1P1.h,S=4,W=5:2,S"), "two\n");
    fs.writeFileSync(path.join(root, "cur", ":2,F"), "three\n");
    const state = await box.refresh();
    expect(messageCount(state)).toBe(3);
    expect(files().filter((f) => f.startsWith("cur/"))).toEqual([]);
    expect(files().filter((f) => f.includes(",S=4,W=5"))).toHaveLength(2);
    const bodies = await Promise.all([1, 2, 3].map(async (uid) => Buffer.from(await box.readMessage(uid)).toString()));
    expect(bodies.sort()).toEqual(["one\n", "three\n", "two\n"]);
  });
  it("a dovecot-keywords line that is not UTF-8 keeps its bytes: the keyword works and is written back as it was", async () => {
    const box = await mailbox();
    await box.refresh();
    // A message Dovecot's letter a marks, and a name with a Latin-1 byte (a fuzzed or foreign file).
    fs.writeFileSync(path.join(root, "cur", "1700000000.M1P1.host,S=4:2,a"), "one\n");
    fs.writeFileSync(path.join(root, "dovecot-keywords"), Buffer.from("0 caf\xe9\n", "latin1"));
    const st = await box.refresh();
    const uid = st.records.uidAt(0);
    const flagsOf = async () => {
      for await (const m of box.fetch([uid], ["flags"])) return m.flags;
      return undefined;
    };
    expect(await flagsOf()).toEqual(["caf\xe9"]);
    await box.transaction().flags([{ uid1: uid, uid2: uid }], "add", ["NonJunk"]).commit();
    expect(await flagsOf()).toEqual(["caf\xe9", "NonJunk"]);
    expect(fs.readFileSync(path.join(root, "dovecot-keywords"))).toEqual(Buffer.from("0 caf\xe9\n1 NonJunk\n", "latin1"));
    expect(files()).toEqual(["cur/1700000000.M1P1.host,S=4:2,ab"]);
  });
});
