import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { MapColumns } from "../../../src/projections/mdbox-map-columns.js";
import { mapEntries, recentFileEnds } from "../../../src/projections/mdbox-map-view.js";
import { MdboxStorageBackend } from "../../../src/drivers/mdbox/storage-backend.js";
import { openStorage, type Storage } from "../../../src/index.js";
import { IndexCorruptedError } from "../../../src/shared/errors.js";

let root: string;
let storage: Storage;
const backend = () => storage.backend as MdboxStorageBackend;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "mdbox-map-columns-"));
  storage = openStorage(`mdbox:${root}`, { fsync: "never" });
});
afterEach(async () => {
  await storage.close();
  fs.rmSync(root, { recursive: true, force: true });
});

it("hold what the map's walks read: every placed record, each file's records in offset order, the newest files with their ends, the files in use", async () => {
  backend().settings.rotateSizeBytes = 300;
  const box = await storage.openMailbox("INBOX");
  for (let i = 1; i <= 12; i++) await box.transaction().append({ body: `Subject: ${i}\n\n`.padEnd(60 + 7 * i, "x") + "\n" }).commit();
  // A purge moves old map uids to the ends of files: a file's end is not always its newest record's.
  await box.transaction().expunge([{ uid1: 2, uid2: 2 }, { uid1: 7, uid2: 7 }]).commit();
  backend().settings.rotateSizeBytes = undefined;
  await backend().purge();
  await box.close();

  const state = backend().map.refresh();
  const columns = MapColumns.of(state, {});
  const all = mapEntries(state);
  expect(columns.count).toBe(all.length);
  expect(Array.from({ length: columns.count }, (_, i) => columns.entry(i))).toEqual(all);
  const files = new Set(all.map((e) => e.fileId));
  expect(files.size).toBeGreaterThan(2);
  const byFile = columns.rowsOfFiles(files);
  for (const fileId of files) {
    expect(Array.from(byFile.get(fileId)!, (i) => columns.entry(i))).toEqual(all.filter((e) => e.fileId === fileId).sort((a, b) => a.offset - b.offset));
  }
  expect(columns.rowsOfFiles(new Set([...files].slice(1)))).toEqual(new Map([...byFile].filter(([fileId]) => fileId !== [...files][0])));
  // The purge moved old map uids behind newer ones: some file's records are not in map uid order.
  expect([...byFile.values()].some((rows) => rows.some((row, k) => k > 0 && row < rows[k - 1]))).toBe(true);
  for (const max of [1, 2, 10]) expect(columns.recentFileEnds(max)).toEqual(recentFileEnds(state, max));
  expect(columns.fileIdsInUse()).toEqual(files);
  expect(recentFileEnds(state, 10)).toEqual(
    [...files]
      .map((fileId) => ({ fileId, newest: Math.max(...all.filter((e) => e.fileId === fileId).map((e) => e.mapUid)), end: Math.max(...all.filter((e) => e.fileId === fileId).map((e) => e.offset + e.size)) }))
      .sort((a, b) => b.newest - a.newest)
      .map(({ fileId, end }) => ({ fileId, end })),
  );
});

it("a map record not 4-byte aligned in the rows (only a foreign log could place it so) is an IndexCorruptedError, not a second, byte-wise decoder", async () => {
  const box = await storage.openMailbox("INBOX");
  await box.transaction().append({ body: "Subject: 1\n\n1\n" }).commit();
  await box.close();
  const state = backend().map.refresh();
  const shifted = { ...state, extensions: state.extensions.map((e) => (e.name === "map" ? { ...e, recordOffset: e.recordOffset + 2 } : e)) };
  const where = { path: backend().paths.mapPrefix };
  expect(() => MapColumns.of(shifted, where)).toThrow(IndexCorruptedError);
  expect(() => MapColumns.of(shifted, where)).toThrow(expect.objectContaining({ path: where.path }));
  expect(MapColumns.of(state, where).count).toBe(1);
});
