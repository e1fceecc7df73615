/**
 * A purge of an m.N whose message headers are longer than 30 bytes (its
 * file header's `M`): Dovecot 2.3 writes M=30 but reads any M a file says
 * (doveadm reads this test's M=40 file). A copy into a new M=30 file needs
 * a 30-byte header: copied as it was, the longer header was read as body
 * (found in the review of purge7).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { openStorage, type Storage } from "../../src/index.js";
import { decodeDboxFile } from "../../src/drivers/dbox/file-format.js";
import { createOracle, describeInterop, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";
import { doveadmFetch, engineFetch, expectCleanMap, mdboxBackend } from "../unit/drivers/mdbox/oracle-helpers.js";

const EXTRA = 10;

/** m.N rewritten with message headers EXTRA bytes longer (`M1e` → `M28`): spaces before each header's LF. */
function lengthenMessageHeaders(file: string): void {
  const bytes = fs.readFileSync(file);
  const decoded = decodeDboxFile(bytes, { path: file });
  const head = bytes.subarray(0, decoded.messages[0].offset).toString("latin1");
  expect(head).toMatch(/ M1e /);
  const parts: Buffer[] = [Buffer.from(head.replace(" M1e ", " M28 "), "latin1")];
  for (const m of decoded.messages) {
    const end = m.offset + m.size;
    // The 30-byte struct's fields, EXTRA spaces, then its final LF: the header ends in LF at M - 1.
    parts.push(bytes.subarray(m.offset, m.offset + 29), Buffer.alloc(EXTRA, 0x20), bytes.subarray(m.offset + 29, end));
  }
  fs.writeFileSync(file, Buffer.concat(parts));
}

/** Every mailbox index and the map (not the mailbox list), as after index loss: m.N stay. */
function dropIndexes(root: string): void {
  for (const e of fs.readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && (e.name.startsWith("dovecot.index") || e.name.startsWith("dovecot.map.index"))) fs.rmSync(path.join(e.parentPath ?? e.path, e.name));
  }
}

describeInterop("mdbox purge of a file with longer message headers, against Dovecot", () => {
  let o: DovecotOracle;
  let storage: Storage;
  beforeEach(() => {
    o = createOracle("mdbox");
  });
  afterEach(async () => {
    await storage.close();
    await o.cleanup();
  });

  it("copies get 30-byte headers: doveadm and the engine read every live message as before", async () => {
    storage = openStorage(o.location);
    const box = await storage.openMailbox("INBOX");
    const tx = box.transaction();
    for (let i = 1; i <= 6; i++) tx.append({ body: sampleMessage(i, { minSize: 400 + i * 13 }) });
    await tx.commit();
    await box.close();
    await storage.close();
    const m1 = path.join(o.storageDir(), "m.1");
    lengthenMessageHeaders(m1);
    dropIndexes(o.root);
    storage = openStorage(o.location);
    await storage.forceResync("*");
    await o.chownRoot();
    // Dovecot reads the M=40 file as the engine's rebuild mapped it.
    const before = await doveadmFetch(o, "INBOX");
    expect(before.map((m) => m.text)).toEqual(Array.from({ length: 6 }, (_, i) => sampleMessage(i + 1, { minSize: 400 + (i + 1) * 13 })));
    expect(await engineFetch(storage, "INBOX")).toEqual(before);

    const inbox = await storage.openMailbox("INBOX");
    await inbox.transaction().expunge([{ uid1: before[0].uid, uid2: before[0].uid }]).commit();
    await inbox.close();
    const result = await mdboxBackend(storage).purge();
    expect(result.corruptFileIds).toEqual([]);
    expect(result.purgedFileIds).toEqual([1]);
    expect(fs.existsSync(m1)).toBe(false);

    await o.chownRoot();
    const after = before.slice(1);
    expect(await doveadmFetch(o, "INBOX")).toEqual(after);
    expect(await engineFetch(storage, "INBOX")).toEqual(after);
    await expectCleanMap(o);
    o.assertNoStderrProblems();
  });
});
