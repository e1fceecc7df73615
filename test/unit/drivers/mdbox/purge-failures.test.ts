/**
 * A purge that fails part-way leaves no m.N descriptor or flock behind and
 * every message readable: the file being opened or planned, and the files
 * of the batch planned before it, are closed on every failure path. And a
 * failing map index rewrite after the purge's map append does not take back
 * copies the map already points at.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { releaseMapUids } from "../../../../src/drivers/mdbox/save.js";
import { MdboxStorageBackend } from "../../../../src/drivers/mdbox/storage-backend.js";
import { tryFlockExclusive } from "../../../../src/drivers/dbox/flock.js";
import type { ErrorWithSuppressed } from "../../../../src/shared/cleanup.js";
import { IndexWriter } from "../../../../src/index-io/writer.js";
import { openStorage, type Mailbox, type Storage } from "../../../../src/index.js";
import { expectLiveMessages, expectNoFlocksUnder, LIVE_UIDS, mFilesOf, msg, openMFdsUnder, targetOf, threeFilesHalfExpunged } from "./three-files.js";

/** The CommonJS node:fs, whose spies reach the ES module bindings after syncBuiltinESMExports(). */
const fsModule = createRequire(import.meta.url)("node:fs") as typeof fs;
let root: string;
let storage: Storage;
const backend = () => storage.backend as MdboxStorageBackend;
const mFiles = () => mFilesOf(root);

const openMFds = () => openMFdsUnder(root);
const expectNoFlocks = () => expectNoFlocksUnder(root);

/** Installs `fn` in place of node:fs's `name` for the ES module importers too. */
function replaceFs(name: "readSync" | "close" | "fstatSync" | "unlinkSync", fn: (...args: never[]) => unknown): void {
  vi.spyOn(fsModule as unknown as Record<string, (...args: never[]) => unknown>, name).mockImplementation(fn);
  syncBuiltinESMExports();
}

function restoreFs(): void {
  vi.restoreAllMocks();
  syncBuiltinESMExports();
}

/** Nothing of the purge is left held in this process, and every live message reads back. */
async function expectNothingLeft(box: Mailbox): Promise<void> {
  expect(openMFds()).toEqual([]);
  expectNoFlocks();
  await expectLiveMessages(box);
}

/** The purge fails with `error` (the spies are taken away then) and leaves nothing held. */
async function expectPurgeFails(box: Mailbox, error: RegExp): Promise<void> {
  await expect(backend().purge()).rejects.toThrow(error);
  restoreFs();
  await expectNothingLeft(box);
}

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "mdbox-purge-failures-"));
  storage = openStorage(`mdbox:${root}`, { fsync: "never" });
});
afterEach(async () => {
  restoreFs();
  await storage.close();
  fs.rmSync(root, { recursive: true, force: true });
});

it("a kept reference spares a file: nothing is left open", async () => {
  const box = await storage.openMailbox("INBOX");
  await box.transaction().append({ body: msg(1) }).append({ body: msg(2) }).commit();
  // Refcount 0 while the mailbox still points at it: the reference check keeps it, and m.1 is not purged.
  await releaseMapUids({ paths: backend().paths, map: backend().map, settings: backend().settings }, [2], { nested: false });
  const r = await backend().purge();
  expect(r.repairedMapUids).toEqual([2]);
  expect(r.purgedFileIds).toEqual([]);
  expect(openMFds()).toEqual([]);
  expectNoFlocks();
  await box.close();
});

/** Makes every read of m.`fileId` throw EIO (`once`: the first only). */
function failReadsOf(fileId: number, once: boolean): void {
  const realReadSync = fsModule.readSync;
  let failed = false;
  replaceFs("readSync", ((...args: unknown[]) => {
    if (!(once && failed) && new RegExp(`m\\.${fileId}$`).test(targetOf(String(args[0])))) {
      failed = true;
      throw Object.assign(new Error("EIO injected"), { code: "EIO" });
    }
    return (realReadSync as (...a: unknown[]) => number)(...args);
  }) as typeof fs.readSync);
}

it("a read of the second file fails: the purge throws, no descriptor or flock left", async () => {
  const box = await threeFilesHalfExpunged(storage, root);
  failReadsOf(2, true);
  await expectPurgeFails(box, /EIO injected/);
  expect((await backend().purge()).purgedFileIds).toEqual([1, 2, 3]);
  await expectLiveMessages(box);
  await box.close();
});

it("a close failing in the cleanup after that does not stop the rest of it, nor replace the first error", async () => {
  const box = await threeFilesHalfExpunged(storage, root);
  const realClose = fsModule.close;
  failReadsOf(2, false);
  // m.1, opened before m.2 failed (the batch plans its files in one call), is closed by the batch's cleanup and then reported as failing to close.
  replaceFs("close", ((fd: number, done: (err: Error | null) => void) => {
    const planned = /m\.1$/.test(targetOf(String(fd)));
    realClose(fd, (err) => done(err ?? (planned ? Object.assign(new Error("close injected"), { code: "EIO" }) : null)));
  }) as typeof fs.close);
  const err = (await backend().purge().catch((e: unknown) => e)) as ErrorWithSuppressed;
  restoreFs();
  expect(err.message).toMatch(/EIO injected/);
  expect(err.suppressed?.map((e) => String(e))).toEqual([expect.stringMatching(/close injected/)]);
  await expectNothingLeft(box);
  await box.close();
});

it("fstat of a file being opened fails: no descriptor or flock left", async () => {
  const box = await threeFilesHalfExpunged(storage, root);
  const realFstat = fsModule.fstatSync;
  replaceFs("fstatSync", ((fd: number, o?: fs.StatSyncOptions) => {
    if (/m\.3$/.test(targetOf(String(fd)))) throw Object.assign(new Error("fstat injected"), { code: "EIO" });
    return realFstat(fd, o);
  }) as typeof fs.fstatSync);
  await expectPurgeFails(box, /fstat injected/);
  await box.close();
});

it("an unlink fails after the map commit: no descriptor or flock left, every message readable", async () => {
  const box = await threeFilesHalfExpunged(storage, root);
  const realUnlink = fsModule.unlinkSync;
  let n = 0;
  replaceFs("unlinkSync", ((p: fs.PathLike) => {
    if (/m\.\d+$/.test(String(p)) && n++ === 1) throw Object.assign(new Error("unlink injected"), { code: "EIO" });
    return realUnlink(p);
  }) as typeof fs.unlinkSync);
  await expectPurgeFails(box, /unlink injected/);
  // The files left behind are orphans now: the map points at the copies.
  const r = await backend().purge();
  expect(r.orphanFileIds.length).toBeGreaterThan(0);
  await expectLiveMessages(box);
  await box.close();
});

it("another holder of the first file's flock: that file is skipped, the rest purged, nothing left open", async () => {
  const box = await threeFilesHalfExpunged(storage, root);
  const fd = fs.openSync(path.join(root, "storage", "m.1"), "r");
  expect(tryFlockExclusive(fd, "m.1")).toBe(true);
  const r = await backend().purge();
  fs.closeSync(fd);
  expect(r.skippedFileIds).toEqual([1]);
  expect(r.purgedFileIds).toEqual([2, 3]);
  await expectNothingLeft(box);
  await box.close();
});

it("a failing map index rewrite after the purge's map append leaves the copies the map points at", async () => {
  const box = await threeFilesHalfExpunged(storage, root);
  // Private: the map index rewrite that follows the map log append.
  vi.spyOn(IndexWriter.prototype as unknown as { checkpointLocked: () => Promise<void> }, "checkpointLocked").mockRejectedValue(new Error("rewrite injected"));
  await expectPurgeFails(box, /rewrite injected/);
  await box.close();
  const again = await storage.openMailbox("INBOX");
  for (const uid of LIVE_UIDS) expect(Buffer.from(await again.readMessage(uid)).toString()).toBe(msg(uid));
  await again.close();
});
