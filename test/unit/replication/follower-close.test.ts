/**
 * A mailbox whose close is under way (its beforeClose hook waiting, as the
 * replication hooks wait for a publish) is not followed again by a commit
 * that ends meanwhile: the follow would come after the close's unfollow and
 * keep a watch, a log descriptor and the mailbox's state for good.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { openStorage, type Mailbox, type Storage } from "../../../src/index.js";
import { LogFollower } from "../../../src/replication/follow.js";

let dir: string;
let storage: Storage;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "follower-close-"));
});

afterEach(async () => {
  await storage.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The follower's own map of followed mailboxes (private: what this test is about). */
function followedCount(f: LogFollower): number {
  return (f as unknown as { followed: Map<Mailbox, unknown> }).followed.size;
}

it("follow() during a close that waits in beforeClose does not follow the mailbox again", async () => {
  const follower = new LogFollower({ has: async () => true, publishNoticed: async () => undefined });
  let closeReached!: () => void;
  const reached = new Promise<void>((resolve) => (closeReached = resolve));
  let releaseClose!: () => void;
  const released = new Promise<void>((resolve) => (releaseClose = resolve));
  storage = openStorage(`mdbox:${dir}`, {
    commitHooks: {
      // As the replication hooks: unfollow, then wait for the publish under way (here: until released).
      beforeClose: async (box) => {
        const unfollowed = follower.unfollow(box);
        closeReached();
        await released;
        await unfollowed;
      },
    },
  });
  const box = await storage.openMailbox("INBOX");
  await box.transaction().append({ body: "Subject: a\n\nbody\n" }).commit();
  follower.follow(box);
  expect(followedCount(follower)).toBe(1);
  const closed = box.close();
  await reached;
  expect(followedCount(follower)).toBe(0);
  // What a commit's afterCommit does while the close waits.
  follower.follow(box);
  releaseClose();
  await closed;
  expect(box.isClosed).toBe(true);
  expect(followedCount(follower)).toBe(0);
  await follower.stop();
});
