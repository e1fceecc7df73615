import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { mapRecordRecords } from "../../../../src/projections/mdbox-map-format.js";
import { releaseMapUids } from "../../../../src/drivers/mdbox/save.js";
import { MdboxStorageBackend } from "../../../../src/drivers/mdbox/storage-backend.js";
import { openStorage, type Storage } from "../../../../src/index.js";
import { ClosedIndexCache } from "../../../../src/index-io/closed-index-cache.js";
import { expectLiveMessages, expectNoFlocksUnder, mFilesOf, openMFdsUnder, threeFilesHalfExpunged } from "./three-files.js";

let root: string;
let storage: Storage;
const backend = () => storage.backend as MdboxStorageBackend;
const msg = (i: number) => `Subject: ${i}\n\nbody ${i}\n`;
const mFiles = () => fs.readdirSync(path.join(root, "storage")).filter((n) => /^m\.\d+$/.test(n)).sort();

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "mdbox-purge-"));
  storage = openStorage(`mdbox:${root}`, { fsync: "never" });
});
afterEach(async () => {
  await storage.close();
  fs.rmSync(root, { recursive: true, force: true });
});

async function inbox(n: number) {
  const box = await storage.openMailbox("INBOX");
  const tx = box.transaction();
  for (let i = 1; i <= n; i++) tx.append({ body: msg(i) });
  await tx.commit();
  return box;
}

describe("purge", () => {
  it("rewrites a file without its refcount-0 messages into a new one, then deletes it; the map is updated in one logged transaction", async () => {
    const box = await inbox(3);
    await box.transaction().expunge([{ uid1: 2, uid2: 2 }]).commit();
    const mapLog = path.join(root, "storage", "dovecot.map.index.log");
    const before = fs.statSync(mapLog).size;
    const result = await backend().purge();
    expect(result).toMatchObject({ purgedFileIds: [1], movedMapUids: [1, 3], expungedMapUids: [2], corruptFileIds: [], orphanFileIds: [] });
    expect(mFiles()).toEqual(["m.2"]);
    expect(fs.statSync(mapLog).size).toBeGreaterThan(before);
    expect(backend().map.entries().map((e) => [e.mapUid, e.fileId, e.offset])).toEqual([[1, 2, 16], [3, 2, 16 + backend().map.lookup(1)!.size]]);
    for (const uid of [1, 3]) expect(Buffer.from(await box.readMessage(uid)).toString()).toBe(msg(uid));
    expect(await backend().purge()).toMatchObject({ purgedFileIds: [], expungedMapUids: [] });
    await box.close();
  });

  it("leaves a file whose messages are not where the map says (a rebuild is needed), and reports it", async () => {
    const box = await inbox(2);
    await box.transaction().expunge([{ uid1: 1, uid2: 1 }]).commit();
    const e2 = backend().map.lookup(2)!;
    await backend().map.transact(async () => [mapRecordRecords([{ mapUid: 2, fileId: 1, offset: e2.offset + 1, size: e2.size }], { external: true })]);
    const result = await backend().purge();
    expect(result.corruptFileIds).toEqual([1]);
    expect(mFiles()).toEqual(["m.1"]);
    await box.close();
  });

  it("keeps a refcount-0 message that a mailbox still points at (crash between map and mailbox) and repairs the count", async () => {
    const box = await inbox(2);
    await releaseMapUids({ paths: backend().paths, map: backend().map, settings: backend().settings }, [2], { nested: false });
    expect(backend().map.lookup(2)!.refcount).toBe(0);
    const result = await backend().purge();
    expect(result).toMatchObject({ stillReferencedMapUids: [2], repairedMapUids: [2], purgedFileIds: [] });
    expect(backend().map.refresh() && backend().map.lookup(2)!.refcount).toBe(1);
    expect(Buffer.from(await box.readMessage(2)).toString()).toBe(msg(2));
    expect(await backend().listDeleted()).toEqual([]);
    await box.close();
  });

  it("checks references from the state of a mailbox closed a moment ago, with what its log gained since", async () => {
    const box = await inbox(1);
    await box.close();
    // Another writer then adds a message whose map refcount a crash left at 0 (the records are only in the log).
    const other = openStorage(`mdbox:${root}`, { fsync: "never" });
    const otherBox = await other.openMailbox("INBOX");
    await otherBox.transaction().append({ body: msg(2) }).commit();
    await otherBox.close();
    await other.close();
    await releaseMapUids({ paths: backend().paths, map: backend().map, settings: backend().settings }, [2], { nested: false });
    const stateOf = vi.spyOn(ClosedIndexCache.prototype, "stateOf");
    await storage.purge();
    expect(stateOf.mock.results.some((r) => r.value !== undefined)).toBe(true);
    // Kept (and its refcount repaired) because the tail after the kept state was read.
    expect(backend().map.refresh() && backend().map.lookup(2)!.refcount).toBe(1);
    expect(mFiles()).toEqual(["m.1"]);
    const again = await storage.openMailbox("INBOX");
    expect(Buffer.from(await again.readMessage(2)).toString()).toBe(msg(2));
    await again.close();
    vi.restoreAllMocks();
  });

  it("reports m.N files no map record points at instead of deleting them", async () => {
    const box = await inbox(1);
    fs.copyFileSync(path.join(root, "storage", "m.1"), path.join(root, "storage", "m.7"));
    expect((await backend().purge()).orphanFileIds).toEqual([7]);
    expect(mFiles()).toEqual(["m.1", "m.7"]);
    await box.close();
  });

  it("a deleted mailbox's messages become deleted messages (recoverable until a purge)", async () => {
    await storage.createMailbox("Trash");
    const trash = await storage.openMailbox("Trash");
    await trash.transaction().append({ body: msg(1) }).commit();
    await trash.close();
    await storage.deleteMailbox("Trash");
    const deleted = await backend().listDeleted();
    expect(deleted.map((d) => d.origMailbox)).toEqual(["Trash"]);
    expect(await backend().recoverDeleted(deleted[0].mapUid)).toEqual({ mailbox: "Trash", uid: 1 });
    expect(await storage.listMailboxes()).toContain("Trash");
  });
});

/** Clobbers the metadata magic ("\n\x01\x03\n") of the last message of m.`fileId`: its end no longer checks. */
function clobberLastMagic(fileId: number): Buffer {
  const file = path.join(root, "storage", `m.${fileId}`);
  const bytes = fs.readFileSync(file);
  const magicAt = bytes.lastIndexOf(Buffer.from("\n\x01\x03\n", "latin1"));
  expect(magicAt).toBeGreaterThan(0);
  bytes[magicAt + 2] = 0x04;
  fs.writeFileSync(file, bytes);
  return bytes;
}

// A batch's files are planned in one call (planFiles), read one after the other through windows
// sharing a buffer: a file that does not match the map is reported and left as it is, whichever
// of the batch it is, and the files before and after it are purged from their own bytes.
describe("purge of a batch with one file not matching the map", () => {
  for (const corrupt of [1, 2, 3]) {
    it(`m.${corrupt} of three: it alone is reported and kept, the others are purged`, async () => {
      const box = await threeFilesHalfExpunged(storage, root);
      const clobbered = clobberLastMagic(corrupt);
      const r = await backend().purge();
      expect(r.corruptFileIds).toEqual([corrupt]);
      expect(r.purgedFileIds).toEqual([1, 2, 3].filter((id) => id !== corrupt));
      expect(r.skippedFileIds).toEqual([]);
      expect(mFilesOf(root)).toContain(`m.${corrupt}`);
      expect(fs.readFileSync(path.join(root, "storage", `m.${corrupt}`)).equals(clobbered)).toBe(true);
      for (const id of [1, 2, 3]) if (id !== corrupt) expect(mFilesOf(root)).not.toContain(`m.${id}`);
      // The file left as it is was closed and unlocked at once, like the purged ones.
      expect(openMFdsUnder(root)).toEqual([]);
      expectNoFlocksUnder(root);
      // Each purged file's live message was copied from that file's bytes, not from the window's last file.
      await expectLiveMessages(box);
      await box.close();
    });
  }
});
