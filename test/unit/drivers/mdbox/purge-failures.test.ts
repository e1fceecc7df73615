/**
 * A purge that fails part-way leaves no m.N descriptor or flock behind and
 * every message readable: the first file, opened and read ahead while the
 * references are checked, and the next file, opened before the current one
 * is planned, are closed on every failure path. And a failing map index
 * rewrite after the purge's map append does not take back copies the map
 * already points at.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { releaseMapUids } from "../../../../src/drivers/mdbox/save.js";
import { MdboxStorageBackend } from "../../../../src/drivers/mdbox/storage-backend.js";
import { tryFlockExclusive } from "../../../../src/drivers/dbox/flock.js";
import { IndexWriter } from "../../../../src/index-io/writer.js";
import { openStorage, type Mailbox, type Storage } from "../../../../src/index.js";

/** The CommonJS node:fs, whose spies reach the ES module bindings after syncBuiltinESMExports(). */
const fsModule = createRequire(import.meta.url)("node:fs") as typeof fs;
let root: string;
let storage: Storage;
const backend = () => storage.backend as MdboxStorageBackend;
const msg = (i: number) => `Subject: ${i}\n\nbody of message ${i}\n`;
const mFiles = () => fs.readdirSync(path.join(root, "storage")).filter((n) => /^m\.\d+$/.test(n)).sort();

/** Where descriptor `fd` points, or "" when it closed meanwhile (readdir's own descriptor). */
function targetOf(fd: string): string {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "";
    throw err;
  }
}

/** This process's descriptors on m.N files, deleted ones too. */
const openMFds = () => fs.readdirSync("/proc/self/fd").map(targetOf).filter((l) => /\/m\.\d+( \(deleted\))?$/.test(l));

/** Every m.N can be flock()ed: nobody in this process holds one. */
function expectNoFlocks(): void {
  for (const f of mFiles()) {
    const fd = fs.openSync(path.join(root, "storage", f), "r");
    expect(tryFlockExclusive(fd, f), f).toBe(true);
    fs.closeSync(fd);
  }
}

/** Installs `fn` in place of node:fs's `name` for the ES module importers too. */
function replaceFs(name: "read" | "fstatSync" | "unlinkSync", fn: (...args: never[]) => unknown): void {
  vi.spyOn(fsModule as unknown as Record<string, (...args: never[]) => unknown>, name).mockImplementation(fn);
  syncBuiltinESMExports();
}

function restoreFs(): void {
  vi.restoreAllMocks();
  syncBuiltinESMExports();
}

async function expectReadable(box: Mailbox, uids: readonly number[]): Promise<void> {
  await box.refresh();
  for (const uid of uids) expect(Buffer.from(await box.readMessage(uid)).toString()).toBe(msg(uid));
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

/** INBOX with messages 1..9 in m.1, m.2, m.3 (three each), the odd ones expunged: a purge rewrites all three. */
async function threeFiles(): Promise<Mailbox> {
  const box = await storage.openMailbox("INBOX");
  const three = async (first: number) => {
    const tx = box.transaction();
    for (let i = first; i < first + 3; i++) tx.append({ body: msg(i) });
    await tx.commit();
  };
  await three(1);
  backend().settings.rotateSizeBytes = fs.statSync(path.join(root, "storage", "m.1")).size;
  await three(4);
  await three(7);
  expect(mFiles()).toEqual(["m.1", "m.2", "m.3"]);
  await box.transaction().expunge([1, 3, 5, 7, 9].map((uid) => ({ uid1: uid, uid2: uid }))).commit();
  backend().settings.rotateSizeBytes = undefined;
  return box;
}

const LIVE = [2, 4, 6, 8];

it("a kept reference spares the file opened ahead: it is closed", async () => {
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

it("a read of the second file fails: the purge throws, no descriptor or flock left", async () => {
  const box = await threeFiles();
  const realRead = fsModule.read;
  let failed = false;
  replaceFs("read", ((...args: unknown[]) => {
    if (!failed && /m\.2$/.test(targetOf(String(args[0])))) {
      failed = true;
      const done = args[args.length - 1] as (err: Error) => void;
      setImmediate(() => done(Object.assign(new Error("EIO injected"), { code: "EIO" })));
      return;
    }
    return (realRead as (...a: unknown[]) => void)(...args);
  }) as typeof fs.read);
  await expect(backend().purge()).rejects.toThrow(/EIO injected/);
  restoreFs();
  expect(openMFds()).toEqual([]);
  expectNoFlocks();
  await expectReadable(box, LIVE);
  expect((await backend().purge()).purgedFileIds).toEqual([1, 2, 3]);
  await expectReadable(box, LIVE);
  await box.close();
});

it("fstat of the file read ahead fails: no descriptor or flock left", async () => {
  const box = await threeFiles();
  const realFstat = fsModule.fstatSync;
  replaceFs("fstatSync", ((fd: number, o?: fs.StatSyncOptions) => {
    if (/m\.3$/.test(targetOf(String(fd)))) throw Object.assign(new Error("fstat injected"), { code: "EIO" });
    return realFstat(fd, o);
  }) as typeof fs.fstatSync);
  await expect(backend().purge()).rejects.toThrow(/fstat injected/);
  restoreFs();
  expect(openMFds()).toEqual([]);
  expectNoFlocks();
  await expectReadable(box, LIVE);
  await box.close();
});

it("an unlink fails after the map commit: no descriptor or flock left, every message readable", async () => {
  const box = await threeFiles();
  const realUnlink = fsModule.unlinkSync;
  let n = 0;
  replaceFs("unlinkSync", ((p: fs.PathLike) => {
    if (/m\.\d+$/.test(String(p)) && n++ === 1) throw Object.assign(new Error("unlink injected"), { code: "EIO" });
    return realUnlink(p);
  }) as typeof fs.unlinkSync);
  await expect(backend().purge()).rejects.toThrow(/unlink injected/);
  restoreFs();
  expect(openMFds()).toEqual([]);
  expectNoFlocks();
  await expectReadable(box, LIVE);
  // The files left behind are orphans now: the map points at the copies.
  const r = await backend().purge();
  expect(r.orphanFileIds.length).toBeGreaterThan(0);
  await expectReadable(box, LIVE);
  await box.close();
});

it("another holder of the first file's flock: that file is skipped, the rest purged, nothing left open", async () => {
  const box = await threeFiles();
  const fd = fs.openSync(path.join(root, "storage", "m.1"), "r");
  expect(tryFlockExclusive(fd, "m.1")).toBe(true);
  const r = await backend().purge();
  fs.closeSync(fd);
  expect(r.skippedFileIds).toEqual([1]);
  expect(r.purgedFileIds).toEqual([2, 3]);
  expect(openMFds()).toEqual([]);
  expectNoFlocks();
  await expectReadable(box, LIVE);
  await box.close();
});

it("a failing map index rewrite after the purge's map append leaves the copies the map points at", async () => {
  const box = await threeFiles();
  // Private: the map index rewrite that follows the map log append.
  vi.spyOn(IndexWriter.prototype as unknown as { checkpointLocked: () => Promise<void> }, "checkpointLocked").mockRejectedValue(new Error("rewrite injected"));
  await expect(backend().purge()).rejects.toThrow(/rewrite injected/);
  restoreFs();
  expect(openMFds()).toEqual([]);
  await box.close();
  const again = await storage.openMailbox("INBOX");
  for (const uid of LIVE) expect(Buffer.from(await again.readMessage(uid)).toString()).toBe(msg(uid));
  await again.close();
});
