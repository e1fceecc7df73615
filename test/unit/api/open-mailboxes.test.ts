/**
 * A Storage keeps the mailboxes open through it (to close them with it), and
 * forgets each one when it closes: a server that opens and closes mailboxes
 * for days must not keep every closed mailbox's state.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { openStorage, type Storage } from "../../../src/index.js";

let dir: string;
let storage: Storage;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "open-mailboxes-"));
  storage = openStorage(`mdbox:${dir}`);
});

afterEach(async () => {
  await storage.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The storage's own set of open mailboxes (private: what this test is about). */
function openCount(s: Storage): number {
  return (s as unknown as { open: Set<unknown> }).open.size;
}

it("forgets a mailbox once it is closed, and still closes the open ones with it", async () => {
  for (let i = 0; i < 20; i++) {
    const box = await storage.openMailbox("INBOX");
    await box.transaction().append({ body: `Subject: ${i}\n\nbody\n` }).commit();
    await box.close();
  }
  expect(openCount(storage)).toBe(0);
  const kept = await storage.openMailbox("INBOX");
  const closedTwice = await storage.openMailbox("INBOX");
  await closedTwice.close();
  await closedTwice.close();
  expect(openCount(storage)).toBe(1);
  await storage.close();
  expect(kept.isClosed).toBe(true);
  expect(openCount(storage)).toBe(0);
});

it("closes every mailbox even when one's close throws, and rethrows that failure", async () => {
  await storage.close();
  let failing: unknown;
  storage = openStorage(`mdbox:${dir}`, {
    commitHooks: {
      beforeClose: async (box) => {
        if (box === failing) throw new Error("hook failed");
      },
    },
  });
  await storage.createMailbox("Other");
  const first = await storage.openMailbox("INBOX");
  const second = await storage.openMailbox("Other");
  failing = first;
  await expect(storage.close()).rejects.toThrow("hook failed");
  expect(first.isClosed).toBe(true);
  expect(second.isClosed).toBe(true);
  expect(openCount(storage)).toBe(0);
});
