import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tryFlockExclusive } from "../../../../src/drivers/dbox/flock.js";
import { MdboxStorageBackend } from "../../../../src/drivers/mdbox/storage-backend.js";
import { openStorage, type Storage } from "../../../../src/index.js";

let root: string;
let storage: Storage;
const backend = () => storage.backend as MdboxStorageBackend;
const msg = (i: number, size: number) => `Subject: ${i}\n\n`.padEnd(size - 1, "x") + "\n";

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "mdbox-append-"));
  storage = openStorage(`mdbox:${root}`, { fsync: "never" });
  backend().settings.rotateSizeBytes = 1000;
});
afterEach(async () => {
  await storage.close();
  fs.rmSync(root, { recursive: true, force: true });
});

async function save(...sizes: number[]): Promise<void> {
  const box = await storage.openMailbox("INBOX");
  const tx = box.transaction();
  sizes.forEach((size, i) => tx.append({ body: msg(i, size) }));
  await tx.commit();
  await box.close();
}

const placement = () => (backend().map.refresh(), backend().map.entries().map((e) => e.fileId));
const mPath = (id: number) => path.join(root, "storage", `m.${id}`);

describe("where saves go (Dovecot's rotation rule)", () => {
  it("appends to the last file while `size + mail < rotate` (earlier transactions) or `≤` (this one)", async () => {
    await save(300);
    await save(300);
    await save(300); // m.1 would be ~1080 bytes: new file
    expect(placement()).toEqual([1, 1, 2]);
    // m.1 ends at 796, m.2 at 406. 200-byte mails: two go to m.2 (406 + 200 < 1000, then 696 + 200 ≤ 1000 inside one
    // transaction), the third still fits the older m.1 (796 + 200 < 1000), the fourth needs m.3.
    await save(200, 200, 200, 200);
    expect(placement().slice(3)).toEqual([2, 2, 1, 3]);
  });

  it("a mail of rotate size or more gets a file of its own", async () => {
    await save(100);
    await save(1000);
    await save(50);
    expect(placement()).toEqual([1, 2, 1]);
  });

  it("skips a file another process has flock()ed, and one whose end is not where the map says", async () => {
    await save(100);
    const fd = fs.openSync(mPath(1), "r");
    expect(await tryFlockExclusive(fd)).toBe(true);
    await save(100);
    fs.closeSync(fd);
    expect(placement()).toEqual([1, 2]);
    // A crashed append left bytes after the last mapped message of m.2: not appendable any more.
    fs.appendFileSync(mPath(2), "garbage");
    await save(100);
    expect(placement()).toEqual([1, 2, 1]);
  });

  it("new files are numbered after highest_file_id and never replace an existing m.N", async () => {
    await save(1000);
    fs.writeFileSync(mPath(2), "2 M1e C0\n"); // an orphan left by a crash
    await save(1000);
    expect(placement()).toEqual([1, 3]);
    expect(backend().map.highestFileId).toBe(3);
    expect(fs.readFileSync(mPath(2), "latin1")).toBe("2 M1e C0\n");
  });

  it("looks at the last 10 distinct files only, newest first, each with the end of its last message", async () => {
    for (let i = 0; i < 12; i++) await save(600); // each one a file of its own: 600 + 600 ≥ 1000
    await save(200); // into the newest file with room: the last one, m.12
    backend().map.refresh();
    const files = backend().map.recentFiles();
    expect(files.map((f) => f.fileId)).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3]);
    for (const f of files) expect(f.end, `m.${f.fileId}`).toBe(fs.statSync(mPath(f.fileId)).size);
  });
});
