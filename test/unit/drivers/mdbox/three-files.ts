/** The store the purge tests start from: three m.N files, each with a live message and dead ones. */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect } from "vitest";
import type { MdboxStorageBackend } from "../../../../src/drivers/mdbox/storage-backend.js";
import { tryFlockExclusive } from "../../../../src/drivers/dbox/flock.js";
import type { Mailbox, Storage } from "../../../../src/index.js";

export const msg = (i: number) => `Subject: ${i}\n\nbody of message ${i}\n`;

/** The m.N files of primary storage under `root`, sorted by name. */
export const mFilesOf = (root: string) => fs.readdirSync(path.join(root, "storage")).filter((n) => /^m\.\d+$/.test(n)).sort();

/** The messages threeFilesHalfExpunged leaves. */
export const LIVE_UIDS = [2, 4, 6, 8];

/** INBOX of the mdbox at `root` with messages 1..9, three to a file (m.1, m.2, m.3); then the odd ones expunged (every file keeps a live one). */
export async function threeFilesHalfExpunged(storage: Storage, root: string): Promise<Mailbox> {
  const settings = (storage.backend as MdboxStorageBackend).settings;
  const box = await storage.openMailbox("INBOX");
  const three = async (first: number) => {
    const tx = box.transaction();
    for (let i = first; i < first + 3; i++) tx.append({ body: msg(i) });
    await tx.commit();
  };
  await three(1);
  // m.1 as full as a file may be that takes three of these in one transaction: each transaction starts a file.
  settings.rotateSizeBytes = fs.statSync(path.join(root, "storage", "m.1")).size;
  await three(4);
  await three(7);
  expect(mFilesOf(root)).toEqual(["m.1", "m.2", "m.3"]);
  await box.transaction().expunge([1, 3, 5, 7, 9].map((uid) => ({ uid1: uid, uid2: uid }))).commit();
  settings.rotateSizeBytes = undefined;
  return box;
}

/** The messages threeFilesHalfExpunged left read back whole. */
export async function expectLiveMessages(box: Mailbox): Promise<void> {
  await box.refresh();
  for (const uid of LIVE_UIDS) expect(Buffer.from(await box.readMessage(uid)).toString()).toBe(msg(uid));
}

/** Where descriptor `fd` points, or "" when it closed meanwhile (readdir's own descriptor). */
export function targetOf(fd: string): string {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "";
    throw err;
  }
}

/** This process's descriptors on the m.N files under `root`, deleted ones too (a failing test's leak is its own). */
export const openMFdsUnder = (root: string) =>
  fs.readdirSync("/proc/self/fd").map(targetOf).filter((l) => l.startsWith(root) && /\/m\.\d+( \(deleted\))?$/.test(l));

/** Every m.N under `root` can be flock()ed: nobody in this process holds one. */
export function expectNoFlocksUnder(root: string): void {
  for (const f of mFilesOf(root)) {
    const fd = fs.openSync(path.join(root, "storage", f), "r");
    expect(tryFlockExclusive(fd, f), f).toBe(true);
    fs.closeSync(fd);
  }
}
