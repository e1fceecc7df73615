/**
 * MailboxTransaction.stage(): an mdbox transaction writes its messages'
 * data into m.N ahead of the commit, which then only syncs and records it;
 * discard() or a failed commit takes it back, and a commit that failed on a
 * lock keeps it for another try.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { MdboxMap } from "../../../../src/drivers/mdbox/map.js";
import { MdboxStorageBackend } from "../../../../src/drivers/mdbox/storage-backend.js";
import { LockTimeoutError, openStorage, searchUids, type Mailbox, type Storage, type StorageOptions } from "../../../../src/index.js";

let root: string;
let storage: Storage;
const msg = (i: number) => `Subject: ${i}\n\n`.padEnd(2000, `body ${i} `) + "\n";
/** Bigger than a file's write buffer (AppendTarget's staging): staging it writes to the file. */
const big = (i: number) => `Subject: ${i}\n\n`.padEnd(300_000, `body ${i} `) + "\n";
const storageFiles = () => fs.readdirSync(path.join(root, "storage")).filter((f) => !f.startsWith("dovecot.map.index")).sort();
const mapEntries = () => {
  const map = (storage.backend as MdboxStorageBackend).map;
  map.refresh();
  return map.entries().map((e) => [e.mapUid, e.fileId, e.refcount]);
};

async function bodiesOf(box: Mailbox): Promise<string[]> {
  const out: string[] = [];
  for await (const m of box.fetch(searchUids(await box.refresh(), [{ type: "all" }]), ["body"])) out.push(Buffer.from(m.body).toString());
  return out;
}

function open(opts: StorageOptions = {}): void {
  storage = openStorage(`mdbox:${root}`, { fsync: "never", ...opts });
}

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "mdbox-stage-"));
});
afterEach(async () => {
  await storage.close();
  fs.rmSync(root, { recursive: true, force: true });
});

it("writes the appends' data into a new file before the commit, which names it m.1 and records every message", async () => {
  open();
  const box = await storage.openMailbox("INBOX");
  const tx = box.transaction().append({ body: msg(1) }).append({ body: big(2), flags: ["\\Seen"] });
  expect(await tx.stage()).toBe(0);
  const [temp] = storageFiles();
  expect(temp).toMatch(/^\.temp\./);
  const written = fs.readFileSync(path.join(root, "storage", temp), "latin1");
  expect(written).toContain(msg(1));
  expect(written).toContain(big(2));
  expect(mapEntries()).toEqual([]);
  tx.append({ body: msg(3) });
  expect(await tx.commit()).toMatchObject({ appendedUids: [1, 2, 3] });
  expect(storageFiles()).toEqual(["m.1"]);
  expect(mapEntries()).toEqual([[1, 1, 1], [2, 1, 1], [3, 1, 1]]);
  expect(await bodiesOf(box)).toEqual([msg(1), big(2), msg(3)]);
  await box.close();
});

it("discard() takes the staged data back: the new file is removed, an existing m.N cut back to its size", async () => {
  open();
  const box = await storage.openMailbox("INBOX");
  await box.transaction().append({ body: msg(1) }).commit();
  const size = fs.statSync(path.join(root, "storage", "m.1")).size;
  const tx = box.transaction().append({ body: big(2) });
  await tx.stage();
  expect(fs.statSync(path.join(root, "storage", "m.1")).size).toBeGreaterThan(size);
  await tx.discard();
  expect(tx.committable).toBe(false);
  await expect(tx.commit()).rejects.toThrow(/already committed/);
  expect(fs.statSync(path.join(root, "storage", "m.1")).size).toBe(size);
  expect(storageFiles()).toEqual(["m.1"]);
  expect(mapEntries()).toEqual([[1, 1, 1]]);
  expect(await bodiesOf(box)).toEqual([msg(1)]);
  await box.close();
});

it("a commit that failed on a lock can run again with the staged data; one that failed otherwise takes it back", async () => {
  const refusals: Error[] = [new LockTimeoutError("held elsewhere", { path: root }), new Error("refused")];
  open({ commitHooks: { beforeCommit: async () => { const e = refusals.shift(); if (e) throw e; } } });
  const box = await storage.openMailbox("INBOX");
  const tx = box.transaction().append({ body: msg(1) });
  await tx.stage();
  await expect(tx.commit()).rejects.toBeInstanceOf(LockTimeoutError);
  expect(tx.committable).toBe(true);
  await expect(tx.commit()).rejects.toThrow("refused");
  expect(tx.committable).toBe(false);
  expect(storageFiles()).toEqual([]);
  const again = box.transaction().append({ body: msg(2) });
  await again.stage();
  expect(await again.commit()).toMatchObject({ appendedUids: [1] });
  expect(storageFiles()).toEqual(["m.1"]);
  expect(await bodiesOf(box)).toEqual([msg(2)]);
  await box.close();
});

it("a commit whose map lock timed out, with appends after the last stage(), runs again without writing them twice", async () => {
  open();
  const box = await storage.openMailbox("INBOX");
  const tx = box.transaction().append({ body: msg(1) });
  await tx.stage();
  tx.append({ body: msg(2) });
  // Another process holds the map lock when the commit records the messages.
  const transact = vi.spyOn(MdboxMap.prototype, "transact").mockRejectedValueOnce(new LockTimeoutError("map held elsewhere", { path: root }));
  try {
    await expect(tx.commit()).rejects.toBeInstanceOf(LockTimeoutError);
  } finally {
    transact.mockRestore();
  }
  expect(tx.committable).toBe(true);
  expect(await tx.commit()).toMatchObject({ appendedUids: [1, 2] });
  expect(await bodiesOf(box)).toEqual([msg(1), msg(2)]);
  // Every byte of m.1 is a mapped message: nothing written twice behind the map's back (a purge would call it corrupt).
  const map = (storage.backend as MdboxStorageBackend).map;
  map.refresh();
  const entries = map.entries();
  expect(entries.map((e) => e.fileId)).toEqual([1, 1]);
  expect(entries[1].offset).toBe(entries[0].offset + entries[0].size);
  expect(fs.statSync(path.join(root, "storage", "m.1")).size).toBe(entries[1].offset + entries[1].size);
  await box.close();
});

it("keeps copies and the bodies of formats that write at commit: stage() reports what is still held", async () => {
  open();
  const box = await storage.openMailbox("INBOX");
  await box.transaction().append({ body: msg(1) }).commit();
  const tx = box.transaction().append({ body: msg(2) }).append({ body: msg(1), copyOf: { mailbox: box, uid: 1 } });
  expect(tx.heldBytes).toBe(msg(2).length + msg(1).length);
  expect(await tx.stage()).toBe(msg(1).length);
  expect(tx.heldBytes).toBe(msg(1).length);
  await tx.commit();
  expect(mapEntries()).toEqual([[1, 1, 2], [2, 1, 1]]);
  const sdbox = openStorage(`sdbox:${root}-sdbox`, { fsync: "never" });
  try {
    const other = await sdbox.openMailbox("INBOX");
    const held = other.transaction().append({ body: msg(1) }).append({ body: msg(2) });
    expect(await held.stage()).toBe(msg(1).length + msg(2).length);
    await held.commit();
    expect(await bodiesOf(other)).toEqual([msg(1), msg(2)]);
    await other.close();
  } finally {
    await sdbox.close();
    fs.rmSync(`${root}-sdbox`, { recursive: true, force: true });
  }
});
