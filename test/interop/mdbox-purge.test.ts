import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { openStorage, type Storage } from "../../src/index.js";
import { createOracle, describeInterop, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";
import { doveadmFetch, engineFetch, expectCleanMap, mdboxBackend } from "../unit/drivers/mdbox/oracle-helpers.js";

const ROTATE = 2048;

function mFiles(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => /^m\.\d+$/.test(n)).sort() : [];
}

describeInterop("mdbox purge, altmove and deleted messages, against Dovecot", () => {
  let o: DovecotOracle;
  let storage: Storage;
  let alt: string;
  beforeEach(() => {
    o = createOracle("mdbox", { settings: { mdbox_rotate_size: String(ROTATE) } });
    alt = path.join(o.root, "alt");
    storage = openStorage(`${o.location}:ALT=${alt}`);
    mdboxBackend(storage).settings.rotateSizeBytes = ROTATE;
  });
  afterEach(async () => {
    await storage.close();
    await o.cleanup();
  });

  /** 24 messages over several m.N files, some copied to Keep, half of INBOX expunged. */
  async function populate(): Promise<void> {
    const box = await storage.openMailbox("INBOX");
    const tx = box.transaction();
    for (let i = 1; i <= 24; i++) tx.append({ body: sampleMessage(i, { minSize: 300 + i * 7 }), flags: i % 3 === 0 ? ["\\Seen"] : [] });
    await tx.commit();
    await storage.createMailbox("Keep");
    const keep = await storage.openMailbox("Keep");
    await box.transaction().copyTo(keep, [{ uid1: 2, uid2: 2 }, { uid1: 10, uid2: 12 }]);
    const odd = Array.from({ length: 12 }, (_, k) => ({ uid1: 2 * k + 2, uid2: 2 * k + 2 }));
    await box.transaction().expunge(odd).commit();
  }

  it("engine purge: old files gone, every live message intact for doveadm and the engine; Dovecot carries on", async () => {
    await populate();
    const before = { inbox: await engineFetch(storage, "INBOX"), keep: await engineFetch(storage, "Keep") };
    const filesBefore = mFiles(o.storageDir());
    expect(filesBefore.length).toBeGreaterThan(3);
    const deletedBefore = await mdboxBackend(storage).listDeleted();
    expect(deletedBefore.length).toBe(9); // 12 expunged, 3 of them still in Keep

    const result = await mdboxBackend(storage).purge();
    expect(result.corruptFileIds).toEqual([]);
    expect(result.expungedMapUids.sort((a, b) => a - b)).toEqual(deletedBefore.map((d) => d.mapUid));
    expect(result.purgedFileIds.length).toBeGreaterThan(0);
    for (const id of result.purgedFileIds) expect(fs.existsSync(path.join(o.storageDir(), `m.${id}`))).toBe(false);
    expect(await mdboxBackend(storage).listDeleted()).toEqual([]);

    await o.chownRoot();
    expect(await doveadmFetch(o, "INBOX")).toEqual(before.inbox);
    expect(await doveadmFetch(o, "Keep")).toEqual(before.keep);
    expect(await engineFetch(storage, "INBOX")).toEqual(before.inbox);
    await expectCleanMap(o);
    const refs = await o.fetch("uid refcount", ["mailbox", "Keep", "all"]);
    // Copies of INBOX uids 2, 10, 11, 12; only 11 is still in INBOX too.
    expect(refs.map((r) => r.refcount)).toEqual(["1", "1", "2", "1"]);

    // Dovecot carries on over the purged storage: save, expunge, purge, no complaints.
    await o.save("INBOX", sampleMessage(99));
    await o.expunge("mailbox Keep uid 1");
    await o.purge();
    expect(await engineFetch(storage, "INBOX")).toEqual(await doveadmFetch(o, "INBOX"));
    expect(await engineFetch(storage, "Keep")).toEqual(await doveadmFetch(o, "Keep"));
    o.assertNoStderrProblems();
  });

  it("Dovecot purge over engine-written storage: the engine reads everything, also through a mailbox opened before", async () => {
    await populate();
    const open = await storage.openMailbox("INBOX");
    const before = await engineFetch(storage, "INBOX");
    await o.chownRoot();
    await o.purge();
    expect(mFiles(o.storageDir())).not.toEqual([]);
    // The open mailbox's map state predates the purge: reads must follow the map to the copies.
    for (const m of before) expect(Buffer.from(await open.readMessage(m.uid)).toString("latin1")).toBe(m.text);
    expect(await engineFetch(storage, "INBOX")).toEqual(before);
    expect(await engineFetch(storage, "Keep")).toEqual(await doveadmFetch(o, "Keep"));
    expect(await mdboxBackend(storage).listDeleted()).toEqual([]);
    await open.close();
    o.assertNoStderrProblems();
  });

  it("deleted messages: listed, read, recovered into their original mailbox (which a purge then keeps)", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.transaction().append({ body: sampleMessage(1) }).append({ body: sampleMessage(2), flags: ["\\Flagged"] }).commit();
    await storage.createMailbox("Other");
    await box.transaction().expunge([{ uid1: 2, uid2: 2 }]).commit();
    const deleted = await mdboxBackend(storage).listDeleted();
    expect(deleted.map((d) => ({ mailbox: d.origMailbox, refcount: d.refcount }))).toEqual([{ mailbox: "INBOX", refcount: 0 }]);
    expect(Buffer.from(await mdboxBackend(storage).readDeleted(deleted[0].mapUid)).toString()).toBe(sampleMessage(2));

    const back = await mdboxBackend(storage).recoverDeleted(deleted[0].mapUid);
    expect(back).toEqual({ mailbox: "INBOX", uid: 3 });
    const elsewhere = await mdboxBackend(storage).listDeleted();
    expect(elsewhere).toEqual([]);
    await mdboxBackend(storage).purge();
    await o.chownRoot();
    const seen = await doveadmFetch(o, "INBOX");
    expect(seen.map((m) => [m.uid, m.flags, m.guid, m.text])).toEqual([
      [1, [], (await engineFetch(storage, "INBOX"))[0].guid, sampleMessage(1)],
      [3, [], deleted[0].guid, sampleMessage(2)],
    ]);
    await o.purge();
    expect(await engineFetch(storage, "INBOX")).toEqual(seen);
    o.assertNoStderrProblems();
  });

  it("altmove of single messages, out of a shared m.N, and back; Dovecot's altmove read by the engine", async () => {
    const dove = (args: string[]) => o.run(args, { extraSettings: { mail_location: `${o.location}:ALT=${alt}` } });
    const box = await storage.openMailbox("INBOX");
    await box.transaction().append({ body: sampleMessage(1) }).append({ body: sampleMessage(2) }).append({ body: sampleMessage(3) }).commit();
    expect(mFiles(o.storageDir())).toEqual(["m.1"]);
    const before = await engineFetch(storage, "INBOX");

    const moved = await mdboxBackend(storage).altMove("INBOX", [2]);
    expect(moved.purgedFileIds).toEqual([1]);
    expect(mFiles(path.join(alt, "storage")).length).toBe(1);
    expect(fs.existsSync(path.join(o.storageDir(), "m.1"))).toBe(false);
    expect(await engineFetch(storage, "INBOX")).toEqual(before);
    await o.chownRoot();
    const rows = await dove(["-f", "json", "fetch", "uid guid text", "mailbox", "INBOX", "all"]);
    expect(JSON.parse(rows.stdout).map((r: Record<string, string>) => r.text)).toEqual(before.map((m) => m.text));
    await expectCleanMap(o, path.join(alt, "storage"));

    await mdboxBackend(storage).altMove("INBOX", [2], false);
    expect(mFiles(path.join(alt, "storage"))).toEqual([]);
    expect(await engineFetch(storage, "INBOX")).toEqual(before);

    // Dovecot moves everything to ALT; the engine follows.
    await o.chownRoot();
    await dove(["altmove", "mailbox", "INBOX", "all"]);
    expect(mFiles(o.storageDir())).toEqual([]);
    expect(await engineFetch(storage, "INBOX")).toEqual(before);
    o.assertNoStderrProblems();
  });
});
