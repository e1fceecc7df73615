/**
 * A purge of several files commits them in one map transaction: one map
 * log fdatasync, after the copies' data syncs, which end before the
 * storage-wide map lock is taken (as Dovecot's purge flushes first); the new file's name made durable (its directory
 * synced alongside the map log) before any old file is deleted; orphan files looked for in that same transaction; and when the map changes under the batch, nothing of it is
 * committed and each file is purged on its own.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { stopWatchingSyncs, watchSyncs } from "../../../helpers/sync-spy.js";
import { refIncRecords } from "../../../../src/projections/mdbox-map-format.js";
import { MdboxMap } from "../../../../src/drivers/mdbox/map.js";
import { MdboxStorageBackend } from "../../../../src/drivers/mdbox/storage-backend.js";
import { openStorage, type Storage } from "../../../../src/index.js";
import { expectLiveMessages, mFilesOf, msg, threeFilesHalfExpunged } from "./three-files.js";

let root: string;
let storage: Storage;
/** What the engine did, in order: "sync <file>" for fdatasync, "dirsync <dir>" for fsync, "unlink <file>". */
let events: string[];
const backend = () => storage.backend as MdboxStorageBackend;
const mFiles = () => mFilesOf(root);

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "mdbox-purge-batch-"));
  storage = openStorage(`mdbox:${root}`);
  events = [];
});
afterEach(async () => {
  stopWatchingSyncs();
  await storage.close();
  fs.rmSync(root, { recursive: true, force: true });
});

it("purges several files in one map transaction: the copies synced before the map log, the map log synced once, the new name before any old file goes", async () => {
  const box = await threeFilesHalfExpunged(storage, root);
  watchSyncs((name, fd) => {
    const file = fs.readlinkSync(`/proc/self/fd/${fd}`);
    events.push(`${name === "fsyncSync" && fs.statSync(file).isDirectory() ? "dirsync" : "sync"} ${path.basename(file)}`);
  });
  const fsModule = createRequire(import.meta.url)("node:fs") as typeof fs;
  const realUnlink = fsModule.unlinkSync;
  vi.spyOn(fsModule, "unlinkSync").mockImplementation((p) => {
    events.push(`unlink ${path.basename(String(p))}`);
    realUnlink(p);
  });
  // The directory sync runs on the pool, alongside the map log's: what counts is that it has ended before any unlink.
  const realFsync = fsModule.fsync;
  vi.spyOn(fsModule, "fsync").mockImplementation(((fd: number, done: (err: NodeJS.ErrnoException | null) => void) => {
    const file = path.basename(fs.readlinkSync(`/proc/self/fd/${fd}`));
    realFsync(fd, (err) => {
      events.push(`dirsync done ${file}`);
      done(err);
    });
  }) as typeof fs.fsync);

  // The copies' data syncs end before the map lock is taken (every writer of the storage waits on it).
  const realDatasync = fsModule.fdatasync;
  vi.spyOn(fsModule, "fdatasync").mockImplementation(((fd: number, done: (err: NodeJS.ErrnoException | null) => void) => {
    realDatasync(fd, async (err) => {
      // A few turns of the event loop later than the real sync: an append that did not wait would come first.
      for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
      events.push("datasync done");
      done(err);
    });
  }) as typeof fs.fdatasync);
  syncBuiltinESMExports();

  // A file no record points at: found in the batch's own map transaction, not in one more.
  fs.copyFileSync(path.join(root, "storage", "m.1"), path.join(root, "storage", "m.9"));
  const map = backend().map;
  const realTransact = map.transact.bind(map);
  const transact = vi.spyOn(map, "transact").mockImplementation((...args: Parameters<typeof map.transact>) => {
    events.push("map lock");
    return realTransact(...args);
  });

  const result = await backend().purge();
  expect(result).toMatchObject({ purgedFileIds: [1, 2, 3], movedMapUids: [2, 4, 6, 8], expungedMapUids: [1, 3, 5, 7, 9], skippedFileIds: [], orphanFileIds: [9] });
  expect(transact).toHaveBeenCalledTimes(1);
  expect(mFiles()).toEqual(["m.4", "m.9"]);
  expect(events.filter((e) => e === "sync dovecot.map.index.log")).toHaveLength(1);
  const mapSync = events.indexOf("sync dovecot.map.index.log");
  const dirSync = events.indexOf("dirsync done storage");
  const firstUnlink = events.findIndex((e) => /^unlink m\.\d+$/.test(e));
  expect(mapSync).toBeGreaterThanOrEqual(0);
  expect(events.filter((e) => e === "datasync done").length).toBeGreaterThan(0);
  expect(events.lastIndexOf("datasync done")).toBeLessThan(events.indexOf("map lock"));
  expect(events.indexOf("map lock")).toBeLessThan(mapSync);
  expect(dirSync).toBeGreaterThan(events.indexOf("map lock"));
  expect(firstUnlink).toBeGreaterThan(mapSync);
  expect(firstUnlink).toBeGreaterThan(dirSync);
  await expectLiveMessages(box);
  await box.close();
});

it("a dead message referenced again while the batch was planned: nothing of the batch is committed, each file is purged alone and that message kept", async () => {
  const box = await threeFilesHalfExpunged(storage, root);
  const revived = 3;
  const fileOfRevived = backend().map.lookup(revived)!.fileId;
  // Another process raises the refcount (a copy of the message) just before the purge commits.
  const other = new MdboxMap(backend().paths);
  const transact = backend().map.transact.bind(backend().map);
  let calls = 0;
  vi.spyOn(backend().map, "transact").mockImplementation(async (build, opts) => {
    if (calls++ === 0) await other.transact(async () => [refIncRecords([{ mapUid: revived, diff: 1 }], { external: true })]);
    return transact(build, opts);
  });

  const result = await backend().purge();
  await other.close();
  expect(result.purgedFileIds).toEqual([1, 2, 3]);
  expect(result.expungedMapUids).toEqual([1, 5, 7, 9]);
  expect(result.movedMapUids.sort((a, b) => a - b)).toEqual([2, 3, 4, 6, 8]);
  backend().map.refresh();
  const moved = backend().map.lookup(revived)!;
  expect(moved.refcount).toBe(1);
  expect(moved.fileId).not.toBe(fileOfRevived);
  const bytes = fs.readFileSync(backend().paths.filePath(moved.fileId, false)).subarray(moved.offset, moved.offset + moved.size);
  expect(Buffer.from(bytes).toString()).toContain(msg(revived));
  await expectLiveMessages(box);
  await box.close();
});
