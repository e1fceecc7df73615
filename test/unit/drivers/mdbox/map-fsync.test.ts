/**
 * Every mdbox map transaction reaches the disk when written (as Dovecot's):
 * a copy's refcount raise and an expunge's decrement make the map log
 * fdatasync, not only saves; with the storage's fsync "never" nothing does.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { stopWatchingSyncs, watchSyncs } from "../../../helpers/sync-spy.js";
import { openStorage, type FsyncMode } from "../../../../src/index.js";

let dir: string;
/** Basenames of the files fdatasync()ed, in order. */
let synced: string[];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-map-fsync-"));
  synced = [];
  watchSyncs((name, fd) => {
    if (name === "fdatasyncSync") synced.push(path.basename(fs.readlinkSync(`/proc/self/fd/${fd}`)));
  });
});

afterEach(() => {
  stopWatchingSyncs();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The map log fdatasyncs made by a copy, then by an expunge of the copy. */
async function mapSyncsOfCopyAndExpunge(fsync: FsyncMode | undefined): Promise<{ copy: number; expunge: number }> {
  const storage = openStorage(`mdbox:${dir}/mail-${fsync ?? "default"}`, fsync === undefined ? {} : { fsync });
  try {
    await storage.createMailbox("Other");
    const inbox = await storage.openMailbox("INBOX");
    const other = await storage.openMailbox("Other");
    await inbox.transaction().append({ body: "Subject: a\n\nbody\n" }).commit();
    const mapLog = (): number => synced.filter((f) => f === "dovecot.map.index.log").length;
    let before = mapLog();
    await inbox.transaction().copyTo(other, [{ uid1: 1, uid2: 1 }]);
    const copy = mapLog() - before;
    before = mapLog();
    await other.transaction().expunge([{ uid1: 1, uid2: 1 }]).commit();
    return { copy, expunge: mapLog() - before };
  } finally {
    await storage.close();
  }
}

it("a copy's refcount raise and an expunge's decrement each fdatasync the map log; with fsync never, neither does", async () => {
  expect(await mapSyncsOfCopyAndExpunge(undefined)).toEqual({ copy: 1, expunge: 1 });
  expect(await mapSyncsOfCopyAndExpunge("never")).toEqual({ copy: 0, expunge: 0 });
});
