/**
 * What a rebuild after index loss syncs, and why that is enough (see
 * rebuild.ts, "Syncs"): the map log once, by the append that holds the
 * refcounts, before any mailbox log pointing at them; a new map log is not
 * synced on its own, because what a crash can leave of it (an empty file)
 * is refused as corrupt and rebuilt, never taken for an empty map.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { stopWatchingSyncs, watchSyncs } from "../../../helpers/sync-spy.js";
import { openStorage } from "../../../../src/index.js";
import { isCorruptionError } from "../../../../src/shared/errors.js";

let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-rebuild-syncs-"));
});

afterEach(() => {
  stopWatchingSyncs();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Deletes every index file (mailbox indexes and the map), keeping the m.N files. */
function dropIndexes(at: string): void {
  for (const e of fs.readdirSync(at, { withFileTypes: true })) {
    const p = path.join(at, e.name);
    if (e.isDirectory()) dropIndexes(p);
    else if (e.name.startsWith("dovecot.index") || e.name.startsWith("dovecot.map.index")) fs.rmSync(p);
  }
}

async function storeWithThree(): Promise<string> {
  const location = `mdbox:${dir}/mail`;
  const storage = openStorage(location);
  const inbox = await storage.openMailbox("INBOX");
  const tx = inbox.transaction();
  for (const n of [1, 2, 3]) tx.append({ body: `Subject: ${n}\n\nbody ${n}\n` });
  await tx.commit();
  await storage.close();
  return location;
}

async function messagesOf(location: string): Promise<number> {
  const storage = openStorage(location);
  try {
    const inbox = await storage.openMailbox("INBOX");
    await inbox.refresh();
    const n = inbox.state.records.count;
    await inbox.close();
    return n;
  } finally {
    await storage.close();
  }
}

it("syncs the map log once, with the refcounts in it, before the mailbox log that points at them", async () => {
  const location = await storeWithThree();
  dropIndexes(dir);
  const synced: string[] = [];
  watchSyncs((name, fd) => {
    if (name === "fdatasyncSync") synced.push(path.basename(fs.readlinkSync(`/proc/self/fd/${fd}`)));
  });
  const storage = openStorage(location);
  await storage.forceResync("*");
  await storage.close();
  stopWatchingSyncs();
  const mapLog = synced.filter((f) => f.startsWith("dovecot.map.index.log"));
  // The append (the file's final name), not the new file before it was linked.
  expect(mapLog, synced.join(" ")).toEqual(["dovecot.map.index.log"]);
  const firstMailboxLog = synced.findIndex((f) => f.startsWith("dovecot.index.log"));
  expect(firstMailboxLog, synced.join(" ")).toBeGreaterThan(synced.indexOf("dovecot.map.index.log"));
  expect(await messagesOf(location)).toBe(3);
});

it("an empty map log (what a crash before the first sync can leave) is refused as corrupt, and the next rebuild brings every message back", async () => {
  const location = await storeWithThree();
  dropIndexes(dir);
  fs.writeFileSync(path.join(dir, "mail", "storage", "dovecot.map.index.log"), "");
  const storage = openStorage(location);
  try {
    const refused = await storage.purge().then(() => undefined, (err: unknown) => err);
    expect(isCorruptionError(refused), String(refused)).toBe(true);
    await storage.forceResync("*");
  } finally {
    await storage.close();
  }
  expect(await messagesOf(location)).toBe(3);
});
