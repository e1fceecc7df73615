import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MdboxMap } from "../../../../src/drivers/mdbox/map.js";
import { PurgeListing } from "../../../../src/drivers/mdbox/purge-listing.js";
import { MdboxStorageBackend } from "../../../../src/drivers/mdbox/storage-backend.js";
import { refIncRecords } from "../../../../src/projections/mdbox-map-format.js";
import { openStorage, type Storage } from "../../../../src/index.js";

let root: string;
let storage: Storage;
const backend = () => storage.backend as MdboxStorageBackend;

beforeEach(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "mdbox-purge-listing-"));
  storage = openStorage(`mdbox:${root}`, { fsync: "never" });
  backend().settings.rotateSizeBytes = 200;
  const box = await storage.openMailbox("INBOX");
  const tx = box.transaction();
  for (let i = 1; i <= 4; i++) tx.append({ body: `Subject: ${i}\n\n`.padEnd(120, "x") + "\n" });
  await tx.commit();
  await box.close();
});
afterEach(async () => {
  await storage.close();
  fs.rmSync(root, { recursive: true, force: true });
});

describe("PurgeListing", () => {
  it("lists the files' records in offset order once, and walks the map again only when another writer changed it", async () => {
    const map = backend().map;
    const files = new Set(map.entries().map((e) => e.fileId));
    expect(files.size).toBeGreaterThan(1);
    const listing = new PurgeListing(map, files);
    const [first, second] = [...files];
    const entries = (listed: ReturnType<PurgeListing["entriesOf"]>) => Array.from(listed.rows, (i) => listed.columns.entry(i));
    const a = listing.entriesOf(first);
    expect(entries(a).map((e) => e.offset)).toEqual([...entries(a).map((e) => e.offset)].sort((x, y) => x - y));
    expect(entries(a).every((e) => e.fileId === first)).toBe(true);
    expect(entries(a)).toEqual(map.entries().filter((e) => e.fileId === first).sort((x, y) => x.offset - y.offset));
    expect(listing.entriesOf(second).state).toBe(a.state);

    // Another process raises a refcount: the next file's records are read from the new state.
    const other = new MdboxMap(backend().paths);
    const mapUid = map.entries().find((e) => e.fileId === second)!.mapUid;
    await other.transact(async () => [refIncRecords([{ mapUid, diff: 1 }], { external: false })]);
    await other.close();
    const b = listing.entriesOf(second);
    expect(b.state).not.toBe(a.state);
    expect(entries(b).find((e) => e.mapUid === mapUid)!.refcount).toBe(2);
  });
});
