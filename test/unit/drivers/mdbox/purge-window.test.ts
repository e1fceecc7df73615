/**
 * A purge reads each m.N through a 256 KiB window (FileWindow), not whole:
 * messages that straddle a window's edge, and mismatches past the first
 * window, are found as with the whole file in memory.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { mapRecordRecords } from "../../../../src/projections/mdbox-map-format.js";
import { MdboxStorageBackend } from "../../../../src/drivers/mdbox/storage-backend.js";
import { openStorage, type Mailbox, type Storage } from "../../../../src/index.js";

let root: string;
let storage: Storage;
const backend = () => storage.backend as MdboxStorageBackend;
const mFiles = () => fs.readdirSync(path.join(root, "storage")).filter((n) => /^m\.\d+$/.test(n)).sort();
const COUNT = 150;
/** Sizes that do not divide the window: message edges fall anywhere in it. */
const msg = (i: number) => `Subject: ${i}\n\n${String(i).repeat(1 + ((i * 7919) % 9000) / String(i).length)}\n`;
const WINDOW_BYTES = 256 * 1024;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "mdbox-purge-window-"));
  storage = openStorage(`mdbox:${root}`, { fsync: "never" });
});
afterEach(async () => {
  await storage.close();
  fs.rmSync(root, { recursive: true, force: true });
});

/** INBOX with COUNT messages in one m.N of several windows, every third expunged. */
async function bigFileThirdExpunged(): Promise<Mailbox> {
  const box = await storage.openMailbox("INBOX");
  const tx = box.transaction();
  for (let i = 1; i <= COUNT; i++) tx.append({ body: msg(i) });
  await tx.commit();
  expect(mFiles()).toEqual(["m.1"]);
  expect(fs.statSync(path.join(root, "storage", "m.1")).size).toBeGreaterThan(2 * WINDOW_BYTES);
  const expunged = [];
  for (let uid = 3; uid <= COUNT; uid += 3) expunged.push({ uid1: uid, uid2: uid });
  await box.transaction().expunge(expunged).commit();
  return box;
}

/** A map uid whose message starts past the first window and ends in a later one than it starts in. */
function straddlingMapUid(): number {
  const e = backend().map.entries().find((x) => x.offset > WINDOW_BYTES && Math.floor(x.offset / WINDOW_BYTES) !== Math.floor((x.offset + x.size) / WINDOW_BYTES));
  expect(e).toBeDefined();
  return e!.mapUid;
}

it("copies the live messages of a file larger than the window whole, those across a window's edge too", async () => {
  const box = await bigFileThirdExpunged();
  straddlingMapUid();
  const r = await backend().purge();
  expect(r).toMatchObject({ purgedFileIds: [1], corruptFileIds: [], skippedFileIds: [] });
  expect(r.expungedMapUids.length).toBe(COUNT / 3);
  expect(r.movedMapUids.length).toBe(COUNT - COUNT / 3);
  expect(mFiles()).toEqual(["m.2"]);
  await box.refresh();
  for (let uid = 1; uid <= COUNT; uid++) {
    if (uid % 3 !== 0) expect(Buffer.from(await box.readMessage(uid)).toString(), `uid ${uid}`).toBe(msg(uid));
  }
  await box.close();
});

it("a record past the first window that is not where its message is makes the file corrupt, and nothing is deleted", async () => {
  const box = await bigFileThirdExpunged();
  const mapUid = straddlingMapUid();
  const e = backend().map.lookup(mapUid)!;
  // One byte longer than the message: its metadata does not end where the map says.
  await backend().map.transact(async () => [mapRecordRecords([{ mapUid, fileId: e.fileId, offset: e.offset, size: e.size + 1 }], { external: true })]);
  const r = await backend().purge();
  expect(r.corruptFileIds).toEqual([1]);
  expect(r.purgedFileIds).toEqual([]);
  expect(mFiles()).toEqual(["m.1"]);
  await box.close();
});

it("a metadata magic clobbered in a message past the first window makes the file corrupt", async () => {
  const box = await bigFileThirdExpunged();
  const e = backend().map.lookup(straddlingMapUid())!;
  const file = path.join(root, "storage", "m.1");
  const bytes = fs.readFileSync(file);
  // The block's magic, "\n\x01\x03\n", is the last one before the message's end.
  const magicAt = bytes.lastIndexOf(Buffer.from("\n\x01\x03\n", "latin1"), e.offset + e.size - 1);
  expect(magicAt).toBeGreaterThan(e.offset);
  bytes[magicAt + 2] = 0x04;
  fs.writeFileSync(file, bytes);
  const r = await backend().purge();
  expect(r.corruptFileIds).toEqual([1]);
  expect(mFiles()).toEqual(["m.1"]);
  await box.close();
});
