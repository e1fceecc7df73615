/**
 * The follower of others' log appends (follow.ts) lets a mailbox go when it
 * closes: its log watch (an inotify watch on the index directory) and its
 * log descriptor are gone once close() returns, and the storage's close
 * lets go of the mailboxes it closes. Counted in /proc/self: the inotify
 * watches on the store's index directories, and (after the storage's
 * close, which empties its closed-index cache) descriptors open on its
 * logs.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect, it } from "vitest";
import type { Storage } from "../../../src/index.js";
import type { DovecotOracle } from "../../helpers/dovecot.js";
import { describeNats, useNatsCluster } from "../../helpers/nats.js";
import { localModeStorage, replicatingStorage, saveSamples as save } from "../../helpers/replication.js";

const MAILBOXES = 12;

/** Descriptors of this process open on a `.log` file under `dir`. */
function logDescriptors(dir: string): string[] {
  const found: string[] = [];
  for (const fd of fs.readdirSync("/proc/self/fd")) {
    const target = readLink(`/proc/self/fd/${fd}`);
    if (target !== undefined && target.startsWith(dir + "/") && /\.log(\.\d+)?$/.test(target)) found.push(target);
  }
  return found;
}

/** The inodes this process's inotify instances watch. */
function watchedInodes(): Set<number> {
  const inodes = new Set<number>();
  for (const fd of fs.readdirSync("/proc/self/fd")) {
    if (readLink(`/proc/self/fd/${fd}`) !== "anon_inode:inotify") continue;
    const info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, "utf8");
    for (const m of info.matchAll(/^inotify wd:\S+ ino:([0-9a-f]+)/gm)) inodes.add(parseInt(m[1], 16));
  }
  return inodes;
}

/** A descriptor's target, or undefined for one closed since the listing (readdir's own). */
function readLink(file: string): string | undefined {
  try {
    return fs.readlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Index directories of `names` on `o` that an inotify watch of this process is on. */
function watchedIndexDirs(o: DovecotOracle, names: readonly string[]): string[] {
  const watched = watchedInodes();
  return names.map((name) => path.dirname(o.mailboxLogPath(name))).filter((dir) => watched.has(fs.statSync(dir).ino));
}

/**
 * `MAILBOXES` mailboxes, each created, committed to and closed in turn, then
 * one more committed to and left open for `close()` (the storage's).
 */
async function openCommitClose(primary: Storage, o: DovecotOracle, close: () => Promise<void>): Promise<void> {
  const names = Array.from({ length: MAILBOXES }, (_, i) => `Box${i}`);
  for (const [i, name] of names.entries()) {
    await primary.createMailbox(name);
    await save(primary, name, [i + 1]);
  }
  // Their descriptors may stay a while: the storage's closed-index cache holds the last ones (closed-index-cache.ts).
  expect(watchedIndexDirs(o, names), "watched index directories after closing each mailbox").toEqual([]);

  const inbox = await primary.openMailbox("INBOX");
  await inbox.transaction().append({ body: "Subject: open\r\n\r\nleft open\r\n" }).commit();
  await close();
  expect(logDescriptors(o.dir), "log descriptors after the storage's close").toEqual([]);
  expect(watchedIndexDirs(o, [...names, "INBOX"]), "watched index directories after the storage's close").toEqual([]);
}

describeNats("replication: the follower lets a mailbox go when it closes", () => {
  const nats = useNatsCluster();

  it("replicated mode: no log watch or descriptor stays after close()", async () => {
    const [p] = nats.newOracles("sdbox");
    await nats.withConnection(async (conn) => {
      const primary = replicatingStorage(conn, p.location, "t-follow-close");
      await openCommitClose(primary, p, () => primary.close());
    });
  });

  it("local mode (outbox): no log watch or descriptor stays after close()", async () => {
    const [p] = nats.newOracles("mdbox");
    await nats.withConnection(async (conn) => {
      const { storage: primary, outbox } = localModeStorage(conn, p.location, "t-follow-close-local", path.join(p.dir, "outbox"));
      // Attached at the end: the drain keeps the mailboxes it publishes open (its own) until the outbox closes.
      await openCommitClose(primary, p, async () => {
        await outbox.attach(primary);
        await outbox.flush();
        await primary.close();
        await outbox.close();
      });
    });
  });
}, { doveadm: true });
