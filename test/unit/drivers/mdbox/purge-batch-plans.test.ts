/**
 * A batch's files are planned in one call (planFiles), read one after the
 * other through windows sharing a buffer: a file that does not match the
 * map is reported and left as it is, whichever of the batch it is, and the
 * files before and after it are purged from their own bytes.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { MdboxStorageBackend } from "../../../../src/drivers/mdbox/storage-backend.js";
import { openStorage, type Storage } from "../../../../src/index.js";
import { expectLiveMessages, mFilesOf, threeFilesHalfExpunged } from "./three-files.js";

let root: string;
let storage: Storage;
const backend = () => storage.backend as MdboxStorageBackend;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "mdbox-purge-batch-plans-"));
  storage = openStorage(`mdbox:${root}`, { fsync: "never" });
});
afterEach(async () => {
  await storage.close();
  fs.rmSync(root, { recursive: true, force: true });
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

for (const corrupt of [1, 2, 3]) {
  it(`m.${corrupt} of a three-file batch does not match the map: it alone is reported and kept, the others are purged`, async () => {
    const box = await threeFilesHalfExpunged(storage, root);
    const clobbered = clobberLastMagic(corrupt);
    const r = await backend().purge();
    expect(r.corruptFileIds).toEqual([corrupt]);
    expect(r.purgedFileIds).toEqual([1, 2, 3].filter((id) => id !== corrupt));
    expect(r.skippedFileIds).toEqual([]);
    expect(mFilesOf(root)).toContain(`m.${corrupt}`);
    expect(fs.readFileSync(path.join(root, "storage", `m.${corrupt}`)).equals(clobbered)).toBe(true);
    for (const id of [1, 2, 3]) if (id !== corrupt) expect(mFilesOf(root)).not.toContain(`m.${id}`);
    // Each purged file's live message was copied from that file's bytes, not from the window's last file.
    await expectLiveMessages(box);
    await box.close();
  });
}
