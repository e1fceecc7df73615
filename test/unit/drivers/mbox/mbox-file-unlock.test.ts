/**
 * The mbox read lock lingers until the event loop turns, then is unlocked
 * through libuv's pool (os-lock). That unlock runs later, on a pool thread:
 * the descriptor must not be closed under it (`mailbox status all '*'` on
 * mbox crashed now and then with an unhandled EBADF, and a descriptor number
 * closed and reused by another open would get the unlock), and a new lock
 * must not be taken before it is done (the pool may run the two in either
 * order). The pool's delay is stood in for by a timer.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it, vi } from "vitest";

const events = vi.hoisted(() => ({ log: [] as string[], delayMs: 20, unlocks: [] as Promise<unknown>[] }));
vi.mock("../../../../src/shared/native-addons.js", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../../../src/shared/native-addons.js")>();
  return {
    ...real,
    fcntlLock(fd: number, start: number, length: number, mode: { exclusive: boolean; immediate: boolean }): Promise<void> {
      events.log.push(`lock ${mode.exclusive ? "write" : "read"}`);
      return real.fcntlLock(fd, start, length, mode);
    },
    // Runs when a pool thread would get to it: later, on whatever the descriptor is then.
    fcntlUnlock(fd: number, start: number, length: number): Promise<void> {
      const done = new Promise<void>((resolve, reject) =>
        setTimeout(() => {
          try {
            fs.fstatSync(fd);
          } catch (err) {
            reject(err);
            return;
          }
          real.fcntlUnlock(fd, start, length).then(() => {
            events.log.push("unlocked");
            resolve();
          }, reject);
        }, events.delayMs),
      );
      // What the test waits on (settled either way: a rejection is the file's to handle).
      events.unlocks.push(done.then(() => undefined, () => undefined));
      return done;
    },
  };
});

import { openMboxFile, releaseMboxFile } from "../../../../src/drivers/mbox/mbox-file.js";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-mbox-unlock-"));
  fs.writeFileSync(path.join(dir, "inbox"), "From a@b Mon Jan  1 00:00:00 2024\nSubject: x\n\nbody\n");
  events.log.length = 0;
  events.unlocks.length = 0;
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
/** Every unlock issued so far has run, and what the file chained to it (a deferred close) too. */
const unlocksDone = async () => {
  await Promise.all(events.unlocks);
  await turn();
};

it("closing the file while the lingering read lock's unlock is in the pool waits for the unlock, and then closes", async () => {
  const file = openMboxFile(path.join(dir, "inbox"), path.join(dir, "journal"));
  let fd = -1;
  await file.read({ timeoutMs: 1000 }, (f) => void (fd = f));
  await turn(); // the lingering lock's unlock starts
  await turn();
  releaseMboxFile(file); // the last user: closes the descriptor
  await unlocksDone();
  expect(events.log).toEqual(["lock read", "unlocked"]);
  expect(() => fs.fstatSync(fd)).toThrow(expect.objectContaining({ code: "EBADF" }));
});

it("a read lock taken while the lingering one's unlock is in the pool is taken after that unlock", async () => {
  const file = openMboxFile(path.join(dir, "inbox"), path.join(dir, "journal"));
  try {
    await file.read({ timeoutMs: 1000 }, () => undefined);
    await turn();
    await turn();
    await file.read({ timeoutMs: 1000 }, () => undefined);
    expect(events.log).toEqual(["lock read", "unlocked", "lock read"]);
    await file.beginWrite({ timeoutMs: 1000 }).then((hold) => hold.end());
    expect(events.log.slice(3)).toEqual(["unlocked", "lock write", "unlocked"]);
  } finally {
    await turn();
    await turn();
    await unlocksDone();
    releaseMboxFile(file);
  }
});
