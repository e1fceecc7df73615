/**
 * Initial seeding (issue 14): a store written without replication until its
 * log rotated (Dovecot's rotation forced, then dovecot.index.log.2 deleted,
 * so the messages before it live only in dovecot.index) is opened with
 * replication and committed to. The mailbox's subject then starts with a
 * seed of its state, in several parts; the replica, of another format, ends
 * equal to the primary, the messages from before replication included
 * (replayed state with modseqs, and doveadm's status and `fetch 'uid flags
 * guid modseq'` + text). Restarts from the stream's start apply nothing; a
 * primary killed mid-seed (its parts cut short) is seeded again whole by
 * the next writer, and a replica that applied the cut seed applies the rest.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect, it } from "vitest";
import { openStorage, type Storage } from "../../../src/index.js";
import { decodeLogHeader } from "../../../src/log/header.js";
import { ReplicationError } from "../../../src/shared/errors.js";
import { Publisher, Replica, replicatedCommitHooks, replicatedTreeHooks, type ReplicationConnection } from "../../../src/replication/index.js";
import { decodeCommit, type ShippedCommit } from "../../../src/replication/wire.js";
import type { SubjectCursor } from "../../../src/replication/publisher.js";
import { sampleMessage, type DovecotOracle } from "../../helpers/dovecot.js";
import { describeNats, useNatsCluster } from "../../helpers/nats.js";
import { catchUpOnce, closeAndCompareInDoveadm, expectSameStores, localModeStorage, replicationCli, saveSamples } from "../../helpers/replication.js";

interface HistoryOptions {
  bigEvery?: number;
  condstore?: boolean;
}

const ROTATE_NOW = { mail_index_log_rotate_max_size: "1", mail_index_rewrite_max_log_bytes: "1" };

/**
 * Mailbox `name` of the store at `o` written without replication: saves
 * with flags and keywords (every `bigEvery`th body above the inline
 * budget), an expunge, flag changes on every message, one by one; then
 * doveadm (after a `fetch modseq`, with `condstore`) rotates its log, and
 * the rotated file is deleted.
 */
async function historyRotatedAway(o: DovecotOracle, name: string, count: number, opts: HistoryOptions): Promise<void> {
  const bigEvery = opts.bigEvery ?? 0;
  const plain = openStorage(o.location);
  if (name !== "INBOX") await plain.createMailbox(name);
  const box = await plain.openMailbox(name);
  for (let i = 0; i < count; i += 5) {
    const tx = box.transaction();
    for (let j = i; j < Math.min(count, i + 5); j++) tx.append({ body: sampleMessage(500 + j, bigEvery > 0 && j % bigEvery === 0 ? { minSize: 700 * 1024 } : {}), flags: j % 3 === 0 ? ["\\Seen", "work"] : j % 3 === 1 ? ["$Label1"] : [] });
    await tx.commit();
  }
  await box.transaction().expunge([{ uid1: 2, uid2: 3 }]).commit();
  // A modseq per message and round, as a mailbox whose log grew past Dovecot's rotation size has many: the replica's own
  // count of the seed's transactions stays below the primary's modseq at the seed (which it then takes).
  for (const flag of ["\\Answered", "\\Seen"]) for (let uid = 1; uid <= count; uid++) await box.transaction().flags([{ uid1: uid, uid2: uid }], "add", [flag]).commit();
  await box.transaction().flags([{ uid1: 4, uid2: 6 }], "add", ["todo"]).commit();
  await box.close();
  await plain.close();
  await o.chownRoot();
  // A CONDSTORE client's first use: Dovecot keeps a modseq per message from then on.
  if (opts.condstore) await o.run(["fetch", "modseq", "mailbox", name.replace("/", o.separator), "all"]);
  await o.flags("add", "\\Flagged", ["mailbox", name.replace("/", o.separator), "uid", "1:5"], { extraSettings: ROTATE_NOW });
  const log = path.join(o.mailboxIndexDir(name), "dovecot.index.log");
  fs.rmSync(log + ".2");
  expect(decodeLogHeader(fs.readFileSync(log), log).prevFileSeq, "the log follows a rotated file").not.toBe(0);
}

/** The primary of `[primary, replica]` with mailboxes (name: message count) whose history rotated away. */
async function rotatedPrimary(oracles: DovecotOracle[], mailboxes: Record<string, number>, opts: HistoryOptions = {}): Promise<DovecotOracle[]> {
  for (const [name, count] of Object.entries(mailboxes)) await historyRotatedAway(oracles[0], name, count, opts);
  return oracles;
}

/** `location` opened as a replicating primary publishing with `publisher` (a seed part size of its own, or a cut one). */
function seedingPrimary(publisher: Publisher, location: string): Storage {
  return openStorage(location, { commitHooks: replicatedCommitHooks(publisher), mailboxTreeHooks: replicatedTreeHooks(publisher) });
}

/** Commits after replication started: a save, flags on a message from before it, an expunge of another. */
async function workAfter(storage: Storage, name: string): Promise<void> {
  const box = await storage.openMailbox(name);
  try {
    await box.transaction().append({ body: sampleMessage(900), flags: ["\\Draft", "late"] }).commit();
    await box.transaction().flags([{ uid1: 1, uid2: 1 }], "add", ["\\Deleted", "work"]).commit();
    await box.transaction().expunge([{ uid1: 5, uid2: 5 }]).commit();
  } finally {
    await box.close();
  }
}

/** Seed parts on `subject` of the stream, in order. */
async function seedParts(conn: ReplicationConnection, subject: string): Promise<ShippedCommit["seed"][]> {
  const out: ShippedCommit["seed"][] = [];
  const last = await conn.lastSequence(subject, Date.now() + conn.timeoutMs);
  for (let seq = 1; seq <= last; seq++) {
    const m = await conn.jsm.streams.getMessage(conn.names.stream, { seq });
    if (m.subject !== subject) continue;
    const c = decodeCommit(m.data, m.subject, m.seq);
    if (c.seed) out.push(c.seed);
  }
  return out;
}

/**
 * Resolves once `pending` settled, or once another process waits for an
 * fcntl lock on `logPath` (a blocked request in /proc/locks), whichever
 * comes first: the other process either did its work or is held off by a
 * lock this process holds. Looked at every 5 ms; fails after 30 s.
 */
async function doneOrWaitingForLock(pending: Promise<unknown>, logPath: string): Promise<"done" | "waiting"> {
  const ino = fs.statSync(logPath).ino;
  let settled = false;
  void pending.then(() => (settled = true), () => (settled = true));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (settled) return "done";
    const blocked = fs.readFileSync("/proc/locks", "utf8").split("\n").some((l) => l.includes("->") && new RegExp(`:${ino} `).test(l));
    if (blocked) return "waiting";
    if (Date.now() > deadline) throw new Error(`neither done nor waiting for the lock on ${logPath} after 30 s`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describeNats("replication: seeding a mailbox whose log rotated away before replication started", () => {
  const nats = useNatsCluster();

  it("sdbox → Maildir: a seed in several parts, then commits; equal to the primary, restarted from the stream's start applying nothing", async () => {
    const [p, r] = await rotatedPrimary(nats.newOracles("sdbox", "maildir"), { INBOX: 23, Archive: 7 });
    await nats.withConnection(async (conn) => {
      const storageId = "t-seed";
      const publisher = new Publisher(conn, storageId, new Map(), { seedPartMessages: 4 });
      const primary = seedingPrimary(publisher, p.location);
      await workAfter(primary, "INBOX");
      await workAfter(primary, "Archive");
      const inbox = await primary.openMailbox("INBOX");
      const parts = await seedParts(conn, publisher.subjectOf(inbox));
      await inbox.close();
      expect(parts.length, "INBOX's seed parts (22 messages, 4 per part)").toBe(6);
      expect(parts.map((s) => s!.last)).toEqual([false, false, false, false, false, true]);

      const replicaStore = openStorage(r.location);
      const positionFile = path.join(r.dir, "replica-position.json");
      const replica = await Replica.start(conn, replicaStore, { storageId, positionFile });
      await replica.caughtUp();
      expect(replica.status().error).toBeUndefined();
      // Live, after the seed: commits continue from the seed's position.
      await workAfter(primary, "Archive");
      await replica.caughtUp();
      expect(replica.status().error).toBeUndefined();
      await replica.stop();
      await expectSameStores(replicaStore, primary, "seeded and live");

      const again = await catchUpOnce(conn, replicaStore, storageId, path.join(r.dir, "from-start.json"));
      expect(again.appliedTransactions, "applied again from the stream's start").toBe(0);
      await expectSameStores(replicaStore, primary, "from the stream's start");
      await closeAndCompareInDoveadm([primary, replicaStore], r, p, ["INBOX", "Archive"]);
    });
  });

  it("mdbox → sdbox: a primary killed mid-seed is seeded again whole; a replica that applied the cut seed ends equal; 700 KiB bodies through the object store; per-message modseqs (CONDSTORE)", async () => {
    const [p, r] = await rotatedPrimary(nats.newOracles("mdbox", "sdbox"), { INBOX: 17 }, { bigEvery: 8, condstore: true });
    await nats.withConnection(async (conn) => {
      const storageId = "t-seed-cut";
      // The first writer stops after two seed parts, as a process killed between publishes would.
      let parts = 0;
      const cut = new class extends Publisher {
        override async publish(subject: string, shipped: ShippedCommit, cursor: SubjectCursor): Promise<number> {
          if (shipped.seed && parts++ === 2) throw new ReplicationError("killed mid-seed (test)");
          return super.publish(subject, shipped, cursor);
        }
      }(conn, storageId, new Map(), { seedPartMessages: 3 });
      const first = seedingPrimary(cut, p.location);
      await expect(workAfter(first, "INBOX")).rejects.toThrow("killed mid-seed");
      await first.close();
      // The 700 KiB bodies went through the object store, keyed by GUID.
      expect((await (await conn.js.views.os(conn.names.bodyBucket)).list()).length).toBeGreaterThan(0);

      const replicaStore = openStorage(r.location);
      const positionFile = path.join(r.dir, "replica-position.json");
      const cutStatus = await catchUpOnce(conn, replicaStore, storageId, positionFile);
      expect(cutStatus.appliedTransactions, "the two parts' appends and modseq raises").toBeGreaterThan(0);

      // The next process's first commit finds the seed unfinished and publishes it again, whole; then its commits.
      const primary = seedingPrimary(new Publisher(conn, storageId, new Map(), { seedPartMessages: 3 }), p.location);
      await workAfter(primary, "INBOX");
      await catchUpOnce(conn, replicaStore, storageId, positionFile);
      await expectSameStores(replicaStore, primary, "after the cut seed and the whole one");

      const again = await catchUpOnce(conn, replicaStore, storageId, path.join(r.dir, "from-start.json"));
      expect(again.appliedTransactions, "applied again from the stream's start").toBe(0);
      await closeAndCompareInDoveadm([primary, replicaStore], r, p, ["INBOX"]);
    });
  });

  it("local mode: the outbox's drain seeds (sdbox → mdbox), then publishes the commits after it", async () => {
    const [p, r] = await rotatedPrimary(nats.newOracles("sdbox", "mdbox"), { INBOX: 12 });
    await nats.withConnection(async (conn) => {
      const storageId = "t-seed-local";
      const { storage: primary, outbox } = localModeStorage(conn, p.location, storageId, path.join(p.dir, "outbox"));
      await outbox.attach(primary);
      await workAfter(primary, "INBOX");
      await outbox.flush();
      const replicaStore = openStorage(r.location);
      await catchUpOnce(conn, replicaStore, storageId, path.join(r.dir, "replica-position.json"));
      await outbox.close();
      await expectSameStores(replicaStore, primary, "seeded by the drain");
      await closeAndCompareInDoveadm([primary, replicaStore], r, p, ["INBOX"]);
    });
  });

  it("the CLI's seed verb publishes every mailbox, also one nobody writes to, and the subscriptions; a second run publishes nothing", async () => {
    const [p, r] = await rotatedPrimary(nats.newOracles("sdbox", "maildir"), { INBOX: 9, Quiet: 6 });
    await nats.withConnection(async (conn) => {
      const storageId = "t-seed-cli";
      const { cli, replicate } = replicationCli(nats.cluster.servers.join(","), storageId);
      await p.run(["mailbox", "subscribe", "Quiet", "Not/Here"]);
      await p.chownRoot();
      expect(await cli(p.location, ...replicate, "seed")).toBe("INBOX: seeded\nQuiet: seeded\nsubscriptions: seeded\n");
      expect(await cli(p.location, ...replicate, "seed", "Quiet")).toBe("Quiet: its subject has messages already\n");
      expect(await cli(p.location, ...replicate, "seed")).toContain("subscriptions: none, or their subject has messages already\n");
      const primary = seedingPrimary(new Publisher(conn, storageId), p.location);
      await workAfter(primary, "INBOX");
      const replicaStore = openStorage(r.location);
      await catchUpOnce(conn, replicaStore, storageId, path.join(r.dir, "replica-position.json"));
      await expectSameStores(replicaStore, primary, "seeded by the CLI");
      await closeAndCompareInDoveadm([primary, replicaStore], r, p, ["INBOX", "Quiet"]);
      expect((await r.mailboxListSubscribed()).sort(), "the replica's subscriptions, seeded").toEqual(["Not/Here", "Quiet"]);
    });
  });
  it("the explicit seed reads under the log lock: doveadm's expunge during it waits, the seed has every message, the expunge follows it", async () => {
    const [p, r] = nats.newOracles("sdbox", "maildir");
    const plain = openStorage(p.location);
    await saveSamples(plain, "INBOX", [1, 2, 3, 4, 5, 6], ["\\Seen"]);
    // A modseq per message: the replica's own count of the seed's transactions stays below the primary's at the seed.
    const history = await plain.openMailbox("INBOX");
    for (let uid = 1; uid <= 6; uid++) await history.transaction().flags([{ uid1: uid, uid2: uid }], "add", ["\\Answered"]).commit();
    await history.close();
    await plain.close();
    await p.chownRoot();
    await nats.withConnection(async (conn) => {
      const storageId = "t-seed-expunge";
      // After the seed's first part, doveadm expunges messages of a later part, and the seed goes on once doveadm
      // either finished (a seed outside the lock would then miss those bodies) or waits for the log lock.
      let expunge: Promise<void> | undefined;
      let seen: "done" | "waiting" | undefined;
      const publisher = new class extends Publisher {
        override async publish(subject: string, shipped: ShippedCommit, cursor: SubjectCursor): Promise<number> {
          const seq = await super.publish(subject, shipped, cursor);
          if (shipped.seed?.part === 0) {
            expunge = p.expunge(["mailbox", "INBOX", "uid", "5:6"]);
            seen = await doneOrWaitingForLock(expunge, p.mailboxLogPath("INBOX"));
          }
          return seq;
        }
      }(conn, storageId, new Map(), { seedPartMessages: 2 });
      const primary = seedingPrimary(publisher, p.location);
      const inbox = await primary.openMailbox("INBOX");
      expect(await publisher.seed(inbox)).toBe(true);
      expect(seen, "doveadm's expunge during the seed").toBe("waiting");
      await expunge;
      const parts = await seedParts(conn, publisher.subjectOf(inbox));
      expect(parts.flatMap((s) => s!.messages.map((m) => m.uid)), "the seed holds the state before the expunge").toEqual([1, 2, 3, 4, 5, 6]);
      // The expunge is published after the seed (with the next commit, or when the primary notices it).
      await inbox.transaction().flags([{ uid1: 1, uid2: 1 }], "add", ["\\Flagged"]).commit();
      await inbox.close();
      const replicaStore = openStorage(r.location);
      await catchUpOnce(conn, replicaStore, storageId, path.join(r.dir, "replica-position.json"));
      await expectSameStores(replicaStore, primary, "seeded, then doveadm's expunge");
      await closeAndCompareInDoveadm([primary, replicaStore], r, p, ["INBOX"]);
    });
  });
}, { doveadm: true });
