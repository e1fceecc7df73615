/**
 * Shared helpers of the mdbox interop suites: what the engine and what
 * doveadm see of a mailbox, in the same shape, and checks of the map.
 */
import * as fs from "node:fs";
import { expect } from "vitest";
import { flagNames, messageCount, recordAt, type Storage } from "../../../../src/index.js";
import type { MdboxStorageBackend } from "../../../../src/drivers/mdbox/storage-backend.js";
import type { DovecotOracle } from "../../../helpers/dovecot.js";

export { doveadmFetch, engineFetch, type SeenMessage } from "../../../helpers/fetch-compare.js";

export function mdboxBackend(storage: Storage): MdboxStorageBackend {
  return storage.backend as MdboxStorageBackend;
}

/**
 * `doveadm dump` of the map index and its log must decode cleanly, and
 * every map record must point at a message doveadm finds in that m.N.
 */
export async function expectCleanMap(o: DovecotOracle, altStorageDir?: string): Promise<void> {
  const storage = o.storageDir();
  const logDump = await o.dump(`${storage}/dovecot.map.index.log`, "log");
  expect(logDump).not.toMatch(/corrupt|Error|Fatal/i);
  const indexDump = await o.dump(storage, "index");
  expect(indexDump).not.toMatch(/corrupt|Error|Fatal/i);
  const records = [...indexDump.matchAll(/file_id = (\d+)\s+:\s+offset\s+=\s+(\d+)\s+:\s+size\s+=\s+(\d+)/g)].map((m) => ({ fileId: Number(m[1]), offset: Number(m[2]), size: Number(m[3]) }));
  const byFile = new Map<number, Set<number>>();
  for (const r of records) {
    if (!byFile.has(r.fileId)) {
      const dump = await fileDump(o, r.fileId, altStorageDir);
      byFile.set(r.fileId, new Set([...dump.matchAll(/^offset (\d+):/gm)].map((m) => Number(m[1]))));
    }
    expect(byFile.get(r.fileId)!.has(r.offset), `map points at m.${r.fileId} offset ${r.offset}`).toBe(true);
  }
}

async function fileDump(o: DovecotOracle, fileId: number, altStorageDir: string | undefined): Promise<string> {
  const primary = `${o.storageDir()}/m.${fileId}`;
  const file = fs.existsSync(primary) || altStorageDir === undefined ? primary : `${altStorageDir}/m.${fileId}`;
  expect(fs.existsSync(file), `m.${fileId} exists`).toBe(true);
  return o.dump(file, "dbox");
}
