/**
 * Dovecot locks the storage-wide mdbox map only for commits that change it
 * (saves, copies, expunges). A flag change must neither wait for nor block
 * another process's map lock; a save still waits for it (and, nested under
 * a mailbox lock, gives up with LockTimeoutError rather than deadlock).
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { flagNames, lookupUid, openStorage, type Mailbox, type Storage } from "../../../../src/index.js";

const worker = path.resolve("test/workers/log-lock-worker.mjs");
let dir: string;
let storage: Storage;
let box: Mailbox;
let holder: ChildProcessWithoutNullStreams | undefined;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-map-lock-"));
  storage = openStorage(`mdbox:${dir}/mail`, { lockTimeoutMs: 300 });
  box = await storage.openMailbox("INBOX");
  await box.transaction().append({ body: "Subject: 1\n\nbody\n", flags: [] }).commit();
});

afterEach(async () => {
  holder?.kill();
  holder = undefined;
  await storage.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Another process takes the map log's fcntl lock and keeps it until killed; resolves once it holds it. */
async function holdMapLock(): Promise<void> {
  const mapLog = path.join(dir, "mail", "storage", "dovecot.map.index.log");
  expect(fs.existsSync(mapLog)).toBe(true);
  holder = spawn(process.execPath, [worker, mapLog, "locked-torn", "", "0"]);
  await new Promise<void>((resolve, reject) => {
    holder!.stdout.on("data", (d: Buffer) => d.toString().includes("ready") && resolve());
    holder!.on("exit", (code) => reject(new Error(`lock holder exited with ${code}`)));
  });
}

it("a flag change commits while another process holds the map lock", async () => {
  await holdMapLock();
  await box.transaction().flags([{ uid1: 1, uid2: 1 }], "add", ["\\Seen"]).commit();
  expect(flagNames(lookupUid(box.state, 1)!.flags)).toEqual(["\\Seen"]);
});

it("a save waits for the map lock and fails with a lock timeout while it is held", async () => {
  await holdMapLock();
  await expect(box.transaction().append({ body: "Subject: 2\n\nbody\n", flags: [] }).commit()).rejects.toMatchObject({ code: "LOCK_TIMEOUT" });
});
