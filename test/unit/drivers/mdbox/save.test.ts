import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MdboxStorageBackend } from "../../../../src/drivers/mdbox/storage-backend.js";
import { refSetRecords } from "../../../../src/projections/mdbox-map-format.js";
import { LockTimeoutError, Mailbox, MailstoreError, lookupUid, openStorage, readLog, type Storage } from "../../../../src/index.js";
import { decodeMdboxRecord } from "../../../../src/drivers/mdbox/mailbox-format.js";

let root: string;
let storage: Storage;
const backend = () => storage.backend as MdboxStorageBackend;
const msg = (i: number, size = 60) => `Subject: ${i}\n\n`.padEnd(size, "x") + "\n";

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "mdbox-save-"));
  storage = openStorage(`mdbox:${root}`, { fsync: "never" });
});
afterEach(async () => {
  await storage.close();
  fs.rmSync(root, { recursive: true, force: true });
});

describe("the map", () => {
  it("is created with the first mailbox, uid_validity = now, and every mailbox header repeats it", async () => {
    const t0 = Math.floor(Date.now() / 1000);
    const box = await storage.openMailbox("INBOX");
    const map = backend().map.refresh();
    expect(map.header.uidValidity).toBeGreaterThanOrEqual(t0);
    expect(map.header.uidValidity).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    expect(fs.existsSync(path.join(root, "storage", "dovecot.map.index.log"))).toBe(true);
    await box.close();
  });

  it("saves: data in m.1, map record {file, offset, size}, refcount 1; copy +1, expunge −1, never below 0", async () => {
    const box = await storage.openMailbox("INBOX");
    await storage.createMailbox("Other");
    const other = await storage.openMailbox("Other");
    await box.transaction().append({ body: msg(1) }).append({ body: msg(2) }).commit();
    const e1 = backend().map.lookup(1)!;
    expect(e1).toMatchObject({ mapUid: 1, fileId: 1, offset: 16, refcount: 1 });
    expect(backend().map.lookup(2)).toMatchObject({ fileId: 1, offset: 16 + e1.size, refcount: 1 });
    expect(fs.readdirSync(path.join(root, "storage")).filter((n) => n.startsWith("m."))).toEqual(["m.1"]);

    await box.transaction().copyTo(other, [{ uid1: 1, uid2: 2 }]);
    expect(backend().map.refresh().records.count).toBe(2); // no data copied
    expect(backend().map.lookup(1)!.refcount).toBe(2);
    const copied = lookupUid(await other.refresh(), 1)!;
    expect(decodeMdboxRecord(copied.ext("mdbox"))!.mapUid).toBe(1);

    await box.transaction().expunge([{ uid1: 1, uid2: 1 }]).commit();
    await other.transaction().expunge([{ uid1: 1, uid2: 1 }]).commit();
    backend().map.refresh();
    expect(backend().map.lookup(1)!.refcount).toBe(0);
    expect(Buffer.from(await backend().readDeleted(1)).toString()).toBe(msg(1));
    await box.close();
    await other.close();
  });

  it("an expunge of several references to one map uid lowers it once by their number, in map uid order", async () => {
    const box = await storage.openMailbox("INBOX");
    await storage.createMailbox("Other");
    const other = await storage.openMailbox("Other");
    await box.transaction().append({ body: msg(1) }).append({ body: msg(2) }).append({ body: msg(3) }).commit();
    await box.transaction().copyTo(other, [{ uid1: 1, uid2: 3 }]);
    await other.transaction().copyTo(box, [{ uid1: 1, uid2: 3 }]);
    // INBOX uids 2..6 name map uids 2, 3, 1, 2, 3.
    await box.transaction().expunge([{ uid1: 2, uid2: 6 }]).commit();
    backend().map.refresh();
    expect([1, 2, 3].map((m) => backend().map.lookup(m)!.refcount)).toEqual([2, 1, 1]);
    const incs = readLog(path.join(root, "storage", "dovecot.map.index")).transactions.flatMap((tx) => tx.entries.map((e) => e.record)).filter((r) => r.type === "ext-atomic-inc");
    expect(incs.at(-1)).toMatchObject({ updates: [{ uid: 1, diff: -1 }, { uid: 2, diff: -2 }, { uid: 3, diff: -2 }] });
    await box.close();
    await other.close();
  });

  it("every map transaction ends with the tail offset at the head, as Dovecot's syncs do", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.transaction().append({ body: msg(1) }).commit();
    await storage.createMailbox("Other");
    await box.transaction().copyTo(await storage.openMailbox("Other"), [{ uid1: 1, uid2: 1 }]);
    await box.transaction().expunge([{ uid1: 1, uid2: 1 }]).commit();
    const prefix = path.join(root, "storage", "dovecot.map.index");
    const read = readLog(prefix);
    const size = fs.statSync(prefix + ".log").size;
    const last = read.transactions.at(-1)!.entries.at(-1)!;
    expect(last.record).toMatchObject({ type: "header-update", external: true });
    const patch = (last.record as { patches: Array<{ offset: number; data: Uint8Array }> }).patches[0];
    expect(patch.offset).toBe(64);
    expect(new DataView(patch.data.buffer, patch.data.byteOffset).getUint32(0, true)).toBe(size);
    // and after each earlier transaction too
    const tails = read.transactions.filter((tx) => tx.entries.length === 1 && tx.entries[0].record.type === "header-update" && (tx.entries[0].record as { patches: Array<{ offset: number }> }).patches[0].offset === 64);
    expect(tails.length).toBeGreaterThanOrEqual(3);
    for (const tx of tails) {
      const p = (tx.entries[0].record as { patches: Array<{ data: Uint8Array }> }).patches[0];
      expect(new DataView(p.data.buffer, p.data.byteOffset).getUint32(0, true)).toBe(tx.end.offset);
    }
    await box.close();
  });

  it("refuses a copy past refcount 32767 with REFCOUNT_OVERFLOW and writes nothing", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.transaction().append({ body: msg(1) }).commit();
    await backend().map.transact(async () => [refSetRecords([{ mapUid: 1, refcount: 32767 }], { external: false })]);
    await storage.createMailbox("Other");
    const other = await storage.openMailbox("Other");
    const mapSize = fs.statSync(path.join(root, "storage", "dovecot.map.index.log")).size;
    const err = await box.transaction().copyTo(other, [{ uid1: 1, uid2: 1 }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MailstoreError);
    expect((err as MailstoreError).code).toBe("REFCOUNT_OVERFLOW");
    expect(fs.statSync(path.join(root, "storage", "dovecot.map.index.log")).size).toBe(mapSize);
    expect((await other.refresh()).records.count).toBe(0);
    expect(backend().map.refresh() && backend().map.lookup(1)!.refcount).toBe(32767);
    // One below the limit still copies.
    await backend().map.transact(async () => [refSetRecords([{ mapUid: 1, refcount: 32766 }], { external: false })]);
    await box.transaction().copyTo(other, [{ uid1: 1, uid2: 1 }]);
    expect(backend().map.refresh() && backend().map.lookup(1)!.refcount).toBe(32767);
    await box.close();
    await other.close();
  });

  it("an append is a copy (refcount +1) only when it names its source (copyOf) in this storage; equal bytes, even readMessage's buffer, are stored again", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.transaction().append({ body: msg(1) }).commit();
    const bytes = await box.readMessage(1);
    await box.transaction().append({ body: new Uint8Array(bytes) }).commit(); // equal bytes, another buffer
    await box.transaction().append({ body: bytes }).commit(); // the very buffer, but no source named
    await box.transaction().append({ body: bytes, copyOf: { mailbox: box, uid: 1 } }).commit(); // a copy
    const elsewhere = openStorage(`mdbox:${root}-other`);
    const other = await elsewhere.openMailbox("INBOX");
    await box.transaction().append({ body: msg(2) }).commit();
    await other.transaction().append({ body: await box.readMessage(4), copyOf: { mailbox: box, uid: 4 } }).commit(); // another storage's map
    backend().map.refresh();
    expect(backend().map.entries().map((e) => [e.mapUid, e.refcount])).toEqual([[1, 2], [2, 1], [3, 1], [4, 1]]);
    await elsewhere.close();
    fs.rmSync(`${root}-other`, { recursive: true, force: true });
    await box.close();
  });
});

describe("lock order with Dovecot", () => {
  let holder: ChildProcess | undefined;
  afterEach(() => holder?.kill("SIGKILL"));

  /** Holds an fcntl write lock on `file` from another process, as Dovecot holds the map while it waits for a mailbox. */
  async function holdLock(file: string): Promise<void> {
    holder = spawn("python3", ["-c", "import fcntl,sys,time\nf=open(sys.argv[1],'r+')\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint('locked',flush=True)\ntime.sleep(60)", file], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve) => holder!.stdout!.on("data", () => resolve()));
  }

  it("a save takes the map lock before the mailbox lock, as Dovecot does: while the map is held elsewhere the mailbox stays free", async () => {
    const s2 = new MdboxStorageBackend(root, undefined, {});
    await s2.createMailbox("Locked");
    const box = Mailbox.open("Locked", s2.openMailbox("Locked"), { fsync: "never", createWithUidValidity: await s2.nextUidValidity() });
    await box.transaction().append({ body: msg(1) }).commit();
    await holdLock(path.join(root, "storage", "dovecot.map.index.log"));
    const saving = box.transaction().append({ body: msg(2) }).commit();
    await new Promise((r) => setTimeout(r, 300));
    // While the save waits for the map, another process can still lock the mailbox log
    // (Dovecot holding the map and asking for the mailbox would not deadlock).
    const mailboxLog = path.join(root, "mailboxes", "Locked", "dbox-Mails", "dovecot.index.log");
    const probe = spawnSync("python3", ["-c", "import fcntl,sys\nf=open(sys.argv[1],'r+')\nfcntl.lockf(f,fcntl.LOCK_EX|fcntl.LOCK_NB)\nprint('free')", mailboxLog], { encoding: "utf8" });
    expect(probe.stdout.trim()).toBe("free");
    await holdLockReleased();
    const done = await saving;
    expect(done.appendedUids).toEqual([2]);
    expect((await box.refresh()).records.count).toBe(2);
    await box.close();
    await s2.close();
  });

  async function holdLockReleased(): Promise<void> {
    holder?.kill("SIGKILL");
    await new Promise((r) => holder!.on("exit", r));
    holder = undefined;
  }
});
