/**
 * The storage's fsync setting reaches every driver's own files, not only the
 * log: with "never" (Dovecot's mail_fsync=never) a save, a flag change and an
 * expunge make no fsync/fdatasync call at all; by default they do (so the
 * counter below can see them).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { stopWatchingSyncs, watchSyncs } from "../../helpers/sync-spy.js";
import { openStorage, type FsyncMode } from "../../../src/index.js";

let dir: string;
let calls: string[];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-fsync-never-"));
  calls = [];
  watchSyncs((name) => calls.push(name + (process.env.FSYNC_STACK ? new Error().stack!.split("\n").slice(2, 5).join(" < ") : "")));
});

afterEach(() => {
  stopWatchingSyncs();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function workload(location: string, fsync: FsyncMode | undefined): Promise<void> {
  const storage = openStorage(location, fsync ? { fsync } : {});
  try {
    const box = await storage.openMailbox("INBOX");
    const save = box.transaction();
    for (let i = 0; i < 3; i++) save.append({ body: `Subject: ${i}\n\nbody ${i}\n` });
    await save.commit();
    const flag = box.transaction();
    flag.flags([{ uid1: 1, uid2: 2 }], "add", ["\\Seen", "Work"]);
    await flag.commit();
    const expunge = box.transaction();
    expunge.expunge([{ uid1: 3, uid2: 3 }]);
    await expunge.commit();
  } finally {
    await storage.close();
  }
}

for (const format of ["sdbox", "mdbox", "maildir", "mbox"]) {
  it(`${format}: fsync "never" makes no fsync call; the default does`, async () => {
    await workload(`${format}:${dir}/never`, "never");
    expect(calls, `${format} with fsync "never"`).toEqual([]);
    await workload(`${format}:${dir}/default`, undefined);
    expect(calls.length, `${format} by default`).toBeGreaterThan(0);
  });
}
