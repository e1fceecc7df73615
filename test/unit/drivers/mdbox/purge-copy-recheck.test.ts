// A file cut between the plan's walk and the copies' second read (a writer ignoring the flock):
// the purge must fail with a typed error and keep m.N, not copy a short message the map then
// points at. (From the review of purge7, where the copy read the file again unchecked.)
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { afterEach, expect, it, vi } from "vitest";
import { MdboxStorageBackend } from "../../../../src/drivers/mdbox/storage-backend.js";
import { openStorage } from "../../../../src/index.js";
import { MailCorruptedError } from "../../../../src/shared/errors.js";

const fsModule = createRequire(import.meta.url)("node:fs") as typeof fs;
afterEach(() => { vi.restoreAllMocks(); syncBuiltinESMExports(); });
const W = 256 * 1024;
const body = (i: number) => `Subject: ${i}\n\n` + String(i % 10).repeat(i % 2 === 0 ? 100000 : 500) + "\n";

it("a message cut after the plan: MailCorruptedError naming m.1, m.1 kept, the map unchanged", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-purge-cut-"));
  const storage = openStorage(`mdbox:${root}`, { fsync: "never" });
  const box = await storage.openMailbox("INBOX");
  const tx = box.transaction();
  for (let i = 1; i <= 12; i++) tx.append({ body: body(i) });
  await tx.commit();
  await box.transaction().expunge([{ uid1: 1, uid2: 1 }]).commit();
  const backend = storage.backend as MdboxStorageBackend;
  const last = backend.map.entries().filter((e) => e.fileId === 1).at(-1)!;
  const m1 = path.join(root, "storage", "m.1");
  let maxPos = -1;
  let cut = false;
  const orig = fsModule.readSync as (...args: unknown[]) => number;
  vi.spyOn(fsModule as unknown as Record<string, (...args: unknown[]) => unknown>, "readSync").mockImplementation(function (this: unknown, ...args: unknown[]) {
    const [fd, , , , pos] = args as [number, unknown, unknown, unknown, unknown];
    if (typeof pos === "number" && fs.readlinkSync(`/proc/self/fd/${fd}`) === m1) {
      // The copies' first read goes back to the start: cut the last message's metadata off now.
      if (!cut && pos < maxPos) { cut = true; fs.truncateSync(m1, last.offset + last.size - 3); }
      maxPos = Math.max(maxPos, pos);
    }
    return orig.apply(this, args);
  });
  syncBuiltinESMExports();
  let err: unknown;
  let r: any;
  try { r = await backend.purge(); } catch (e) { err = e; }
  vi.restoreAllMocks(); syncBuiltinESMExports();
  const moved = backend.map.lookup(last.mapUid);
  expect(cut).toBe(true);
  expect(err).toBeInstanceOf(MailCorruptedError);
  expect((err as MailCorruptedError).message).toContain(m1);
  expect(r).toBeUndefined();
  expect(fs.existsSync(m1)).toBe(true);
  expect(moved).toEqual(last);
  await box.close(); await storage.close(); fs.rmSync(root, { recursive: true, force: true });
});
