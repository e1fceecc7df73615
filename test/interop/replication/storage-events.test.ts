/**
 * Storage events (issue 14: "the body moves it made"): an mdbox primary's
 * purge and altmove are published on the storage subject
 * (`mail.<storage-id>._storage`), and each mailbox commit carries the map
 * log range its saves, copies and expunges wrote. An mdbox replica with ALT
 * repeats the purge and the altmove on its own store (its deleted messages
 * are gone as the primary's, the moved message's m.N is in its ALT
 * storage), a Maildir replica skips them cleanly, and doveadm shows both
 * replicas as the primary. A fenced writer's purge and altmove change and
 * publish nothing.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect, it } from "vitest";
import { openStorage, type Storage } from "../../../src/index.js";
import { ReplicationFencedError } from "../../../src/shared/errors.js";
import { Publisher, Replica, replicatedCommitHooks, replicatedStorageHooks, replicatedTreeHooks, storageSubject, type ReplicationConnection } from "../../../src/replication/index.js";
import { decodeCommit, decodeStorageEvent, type ShippedLogRange } from "../../../src/replication/wire.js";
import { isStorageSubject, mailboxSubject } from "../../../src/replication/subjects.js";
import type { MdboxMailboxBackend } from "../../../src/drivers/mdbox/mailbox-backend.js";
import type { MdboxStorageBackend } from "../../../src/drivers/mdbox/storage-backend.js";
import { createOracle, sampleMessage, type DovecotOracle, type MailFormat } from "../../helpers/dovecot.js";
import { describeNats, useNatsCluster, type NatsSuite } from "../../helpers/nats.js";
import { catchUpOnce, closeAndCompareInDoveadm, doveadmView, expectSameStores, localModeStorage, replicatingStorage, replicationCli, saveSamples as save } from "../../helpers/replication.js";

/** Oracles with ALT storage where the format has it, cleaned up with the cluster. */
function altOracles(nats: NatsSuite, ...formats: MailFormat[]): DovecotOracle[] {
  const made = formats.map((f) => createOracle(f, { alt: true }));
  nats.oracles.push(...made);
  return made;
}

/** Whether message `uid` of `mailbox` lives in an m.N of the ALT storage. */
async function inAlt(store: Storage, mailbox: string, uid: number): Promise<boolean> {
  const box = await store.openMailbox(mailbox);
  try {
    const entry = (box.backend as MdboxMailboxBackend).resolve(await box.refresh(), uid).entry;
    return (store.backend as MdboxStorageBackend).paths.locate(entry.fileId)?.alt === true;
  } finally {
    await box.close();
  }
}

async function expunge(store: Storage, mailbox: string, uids: readonly number[]): Promise<void> {
  const box = await store.openMailbox(mailbox);
  try {
    await box.transaction().expunge(uids.map((uid) => ({ uid1: uid, uid2: uid }))).commit();
  } finally {
    await box.close();
  }
}

async function copy(store: Storage, from: string, to: string, uids: readonly number[]): Promise<void> {
  const src = await store.openMailbox(from);
  const dst = await store.openMailbox(to);
  try {
    await src.transaction().copyTo(dst, uids.map((uid) => ({ uid1: uid, uid2: uid })));
  } finally {
    await src.close();
    await dst.close();
  }
}

/**
 * `location` opened as a replicating primary, with its work before any
 * replica runs: saves in INBOX (UIDs 1-5), a copy of UID 1 to Other (a
 * refcount raised), and expunges of UIDs 2 and 3 (refcounts to 0: deleted,
 * not purged yet).
 */
async function primaryAfterSaves(conn: ReplicationConnection, location: string, storageId: string): Promise<Storage> {
  const primary = replicatingStorage(conn, location, storageId);
  await primary.createMailbox("Other");
  await save(primary, "INBOX", [1, 2, 3, 4, 5]);
  await copy(primary, "INBOX", "Other", [1]);
  await expunge(primary, "INBOX", [2, 3]);
  return primary;
}

/** The primary's storage events: a purge (after one more expunge), UID 4 of INBOX to ALT, then UID 1 to ALT and back. */
async function purgeAndAltmove(primary: Storage): Promise<void> {
  await expunge(primary, "Other", [1]);
  await primary.purge();
  expect(await primary.deletedMessages(), "primary's deleted messages after its purge").toEqual([]);
  await primary.altMove("INBOX", [4], true);
  await primary.altMove("INBOX", [1], true);
  await primary.altMove("INBOX", [1], false);
  expect(await inAlt(primary, "INBOX", 4)).toBe(true);
  expect(await inAlt(primary, "INBOX", 1)).toBe(false);
}

describeNats("replication: storage events (purge, altmove, map records)", () => {
  const nats = useNatsCluster();
  /** Runs `fn` with an mdbox primary and an mdbox replica oracle, both with ALT, and a connection. */
  const withMdboxAltPair = (fn: (p: DovecotOracle, r: DovecotOracle, conn: ReplicationConnection) => Promise<void>) => {
    const [p, r] = altOracles(nats, "mdbox", "mdbox");
    return nats.withConnection((conn) => fn(p, r, conn));
  };

  it("mdbox with ALT → mdbox with ALT: the replica purges and altmoves as the primary, live and again from the stream's start", async () => {
    await withMdboxAltPair(async (p, r, conn) => {
      const storageId = "t-storage-events";
      const primary = await primaryAfterSaves(conn, p.location, storageId);
      const replicaStore = openStorage(r.location);
      const replica = await Replica.start(conn, replicaStore, { storageId, positionFile: path.join(r.dir, "replica-position.json") });
      await replica.caughtUp();
      // The map records of the saves, the copy and the expunges came with their commits; the replica's map is its own.
      expect(replica.status().mapLogRanges, "map log ranges of the commits").toBeGreaterThanOrEqual(3);
      expect((await replicaStore.deletedMessages()).length, "replica's deleted messages before the purge").toBe(2);

      await purgeAndAltmove(primary);
      await replica.caughtUp();
      const live = replica.status();
      expect(live.error).toBeUndefined();
      expect(live.appliedStorageEvents, "purge and three altmoves").toBe(4);
      expect(live.skippedStorageEvents).toBe(0);
      await replica.stop();
      expect(await replicaStore.deletedMessages(), "replica's deleted messages after the primary's purge").toEqual([]);
      expect(await inAlt(replicaStore, "INBOX", 4), "altmoved m.N in the replica's ALT").toBe(true);
      expect(await inAlt(replicaStore, "INBOX", 1), "moved back").toBe(false);
      await expectSameStores(replicaStore, primary, "live");

      await expectMapLogTiled(conn, storageId, primary);

      // From the stream's start: nothing applied twice, the events repeat harmlessly.
      const again = await catchUpOnce(conn, replicaStore, storageId, path.join(r.dir, "from-start.json"));
      expect(again.appliedTransactions, "applied again from the stream's start").toBe(0);
      expect(await replicaStore.deletedMessages()).toEqual([]);
      expect(await inAlt(replicaStore, "INBOX", 4)).toBe(true);
      expect(await inAlt(replicaStore, "INBOX", 1)).toBe(false);
      await closeAndCompareInDoveadm([primary, replicaStore], r, p, ["INBOX", "Other"]);
    });
  });

  it("a Maildir replica of the same work skips the purge and altmoves (counted), and reads the map records without applying them", async () => {
    const [p] = altOracles(nats, "mdbox");
    const [r] = nats.newOracles("maildir");
    await nats.withConnection(async (conn) => {
      const storageId = "t-storage-events-maildir";
      const primary = await primaryAfterSaves(conn, p.location, storageId);
      await purgeAndAltmove(primary);
      const replicaStore = openStorage(r.location);
      const status = await catchUpOnce(conn, replicaStore, storageId, path.join(r.dir, "replica-position.json"));
      expect(status.appliedStorageEvents).toBe(0);
      expect(status.skippedStorageEvents, "purge and three altmoves").toBe(4);
      expect(status.mapLogRanges).toBeGreaterThanOrEqual(3);
      await expectSameStores(replicaStore, primary, "maildir");
      await closeAndCompareInDoveadm([primary, replicaStore], r, p, ["INBOX", "Other"]);
    });
  });

  it("a fenced writer's purge and altmove change nothing and publish nothing", async () => {
    const [p] = altOracles(nats, "mdbox");
    await nats.withConnection(async (conn) => {
      const storageId = "t-storage-events-fence";
      const stale = replicatingStorage(conn, p.location, storageId);
      const current = replicatingStorage(conn, p.location, storageId);
      await save(stale, "INBOX", [1, 2, 3]);
      await stale.purge();
      await current.purge();
      await expunge(current, "INBOX", [1]);
      const subject = storageSubject(conn.names, storageId);
      const lastBefore = await conn.lastSequence(subject, Date.now() + conn.timeoutMs);
      expect(lastBefore).toBeGreaterThan(0);

      await expect(stale.purge()).rejects.toBeInstanceOf(ReplicationFencedError);
      expect((await stale.deletedMessages()).length, "nothing purged").toBe(1);
      await expect(stale.altMove("INBOX", [2], true)).rejects.toBeInstanceOf(ReplicationFencedError);
      expect(await inAlt(stale, "INBOX", 2), "nothing moved").toBe(false);
      expect(await conn.lastSequence(subject, Date.now() + conn.timeoutMs), "nothing published").toBe(lastBefore);
      await stale.close();
      await current.close();
    });
  });

  it("a promoted mdbox replica takes the storage subject over: its purge is published, the old primary's is fenced", async () => {
    await withMdboxAltPair(async (p, r, conn) => {
      const storageId = "t-storage-events-promote";
      const primary = await primaryAfterSaves(conn, p.location, storageId);
      await primary.purge();
      const replicaStore = openStorage(r.location);
      const replica = await Replica.start(conn, replicaStore, { storageId, positionFile: path.join(r.dir, "replica-position.json") });
      await replica.caughtUp();
      const publisher = await replica.promote();
      // Every subject the replica applied ends with its takeover, Other's too (its log is byte-for-byte the primary's).
      await expectTakenOver(conn, storageId, publisher, replicaStore, ["INBOX", "Other"]);
      await replicaStore.close();
      const promoted = promotedStorage(publisher, r.location);
      await expunge(promoted, "INBOX", [4]);
      await promoted.purge();
      expect(await promoted.deletedMessages()).toEqual([]);
      await assertLastIsPurgeOf(conn, storageId, promoted);
      // The old primary knew the subject up to its own purge: the takeover and the promoted store's purge fence it.
      await expect(primary.purge()).rejects.toBeInstanceOf(ReplicationFencedError);
      await primary.close();
      await promoted.close();
    });
  });

  it("a promoted Maildir replica takes the storage subject over too: the old mdbox primary's next purge is fenced", async () => {
    const [p] = altOracles(nats, "mdbox");
    const [r] = nats.newOracles("maildir");
    await nats.withConnection(async (conn) => {
      const storageId = "t-storage-events-promote-maildir";
      const primary = await primaryAfterSaves(conn, p.location, storageId);
      await primary.purge();
      // A message deleted and not purged yet (its only reference): what the fenced purge must leave.
      await expunge(primary, "INBOX", [5]);
      const replicaStore = openStorage(r.location);
      const replica = await Replica.start(conn, replicaStore, { storageId, positionFile: path.join(r.dir, "replica-position.json") });
      await replica.caughtUp();
      await replica.promote();
      await replicaStore.close();
      await expect(primary.purge()).rejects.toBeInstanceOf(ReplicationFencedError);
      expect((await primary.deletedMessages()).length, "the fenced purge removed nothing").toBe(1);
      await primary.close();
    });
  });

  it("local mode: a purge and an altmove wait for the outbox's commits, then are published; the mdbox replica with ALT repeats them", async () => {
    await withMdboxAltPair(async (p, r, conn) => {
      const storageId = "t-storage-events-local";
      const { storage: primary, outbox } = localModeStorage(conn, p.location, storageId, path.join(p.dir, "outbox"));
      await outbox.attach(primary);
      await save(primary, "INBOX", [1, 2, 3]);
      // The purge drains the outbox first, so the expunge is before it in the stream (this test does not force the drain to lag).
      await expunge(primary, "INBOX", [1]);
      await primary.purge();
      expect(outbox.status().dirty, "drained before the purge").toEqual([]);
      await primary.altMove("INBOX", [2], true);
      const replicaStore = openStorage(r.location);
      const status = await catchUpOnce(conn, replicaStore, storageId, path.join(r.dir, "replica-position.json"));
      expect(status.appliedStorageEvents).toBe(2);
      expect(await replicaStore.deletedMessages(), "the expunge came before the purge").toEqual([]);
      expect(await inAlt(replicaStore, "INBOX", 2)).toBe(true);
      await outbox.close();
      await closeAndCompareInDoveadm([primary, replicaStore], r, p, ["INBOX"]);
    });
  });

  it("sdbox with ALT → sdbox with ALT: the altmoves are repeated (u.N in the replica's ALT), the primary's BACKEND flag updates are left out, modseqs agree", async () => {
    const [p, r] = altOracles(nats, "sdbox", "sdbox");
    await nats.withConnection(async (conn) => {
      const storageId = "t-storage-events-sdbox";
      const primary = replicatingStorage(conn, p.location, storageId);
      await save(primary, "INBOX", [1, 2, 3]);
      // A purge of sdbox is a no-op, as Dovecot's: nothing to publish.
      await primary.purge();
      expect(await conn.lastSequence(storageSubject(conn.names, storageId), Date.now() + conn.timeoutMs)).toBe(0);
      await primary.altMove("INBOX", [1, 2], true);
      await primary.altMove("INBOX", [2], false);
      // The altmoves' flag updates reach the stream with this commit.
      await save(primary, "INBOX", [4]);
      const replicaStore = openStorage(r.location);
      const status = await catchUpOnce(conn, replicaStore, storageId, path.join(r.dir, "replica-position.json"));
      expect(status.appliedStorageEvents).toBe(2);
      expect(fs.existsSync(path.join(r.dir, "alt", "mailboxes", "INBOX", "dbox-Mails", "u.1")), "u.1 in the replica's ALT").toBe(true);
      expect(fs.existsSync(path.join(r.dir, "alt", "mailboxes", "INBOX", "dbox-Mails", "u.2")), "u.2 moved back").toBe(false);
      await expectSameStores(replicaStore, primary, "sdbox");
      await closeAndCompareInDoveadm([primary, replicaStore], r, p, ["INBOX"]);
    });
  });

  it("the CLI: purge and altmove with --replicate are published; replica --once on an mdbox with ALT repeats them", async () => {
    const [p, r] = altOracles(nats, "mdbox", "mdbox");
    const urls = nats.cluster.servers.join(",");
    const { cli, save, replicate } = replicationCli(urls, "t-storage-events-cli");
    for (let i = 1; i <= 3; i++) await save(p.location, "INBOX", sampleMessage(i));
    await cli(p.location, ...replicate, "expunge", "mailbox", "INBOX", "uid", "1");
    await cli(p.location, ...replicate, "purge");
    await cli(p.location, ...replicate, "altmove", "mailbox", "INBOX", "uid", "2");
    const out = (await cli(r.location, "replica", "--from", urls, "--storage-id", "t-storage-events-cli", "--once", "--json")).trim().split("\n");
    const lines = out.map((l) => JSON.parse(l) as { storageEvent?: { type: string; applied: boolean } });
    expect(lines.flatMap((l) => (l.storageEvent ? [l.storageEvent] : []))).toEqual([{ type: "purge", applied: true }, { type: "altmove", applied: true }]);
    expect(lines.at(-1)).toMatchObject({ lag: 0, appliedStorageEvents: 2, skippedStorageEvents: 0 });
    const replicaStore = openStorage(r.location);
    expect(await replicaStore.deletedMessages()).toEqual([]);
    expect(await inAlt(replicaStore, "INBOX", 2)).toBe(true);
    await replicaStore.close();
    expect(await doveadmView(r, "INBOX")).toEqual(await doveadmView(p, "INBOX"));
  });
}, { doveadm: true });

/** `location` opened as a primary writing through `publisher` (a promoted replica's). */
function promotedStorage(publisher: Publisher, location: string): Storage {
  return openStorage(location, { commitHooks: replicatedCommitHooks(publisher), mailboxTreeHooks: replicatedTreeHooks(publisher), storageHooks: replicatedStorageHooks(publisher) });
}

/** The storage subject's last message is a purge published by `store` (its INBOX GUID names the writer). */
async function assertLastIsPurgeOf(conn: ReplicationConnection, storageId: string, store: Storage): Promise<void> {
  const subject = storageSubject(conn.names, storageId);
  const m = await conn.jsm.streams.getMessage(conn.names.stream, { last_by_subj: subject });
  const event = decodeStorageEvent(m.data, subject, m.seq);
  const inbox = await store.openMailbox("INBOX");
  const guid = inbox.guid();
  await inbox.close();
  expect(event.op.type).toBe("purge");
  expect(event.writerGuid, "written by the promoted store").toBe(guid);
}

/**
 * Each of `mailboxes`' subjects (the old primary's GUIDs, as the promoted
 * publisher keeps them) and the storage subject end with a message written
 * by `store`: its takeover was stored, not taken by JetStream for a
 * duplicate of the old primary's last message.
 */
async function expectTakenOver(conn: ReplicationConnection, storageId: string, publisher: Publisher, store: Storage, mailboxes: readonly string[]): Promise<void> {
  for (const name of mailboxes) {
    const subjectGuid = publisher.subjectGuidOf(name);
    expect(subjectGuid, `${name}: on the old primary's subject`).toBeDefined();
    const subject = mailboxSubject(conn.names, storageId, subjectGuid!);
    const m = await conn.jsm.streams.getMessage(conn.names.stream, { last_by_subj: subject });
    const box = await store.openMailbox(name);
    const guid = box.guid();
    await box.close();
    expect(decodeCommit(m.data, subject, m.seq).writerGuid, `${name}'s subject ends with the promoted store's takeover`).toBe(guid);
  }
  const subject = storageSubject(conn.names, storageId);
  const m = await conn.jsm.streams.getMessage(conn.names.stream, { last_by_subj: subject });
  const event = decodeStorageEvent(m.data, subject, m.seq);
  expect(event.op.type).toBe("takeover");
  expect(event.writerGuid).toBe(await publisher.storageWriterGuid(store));
}

/**
 * Every map write of the primary went through a commit, purge or altmove,
 * so the map log ranges its stream messages carry tile the primary's map
 * log from its first shipped byte to its end, with exactly its bytes: none
 * missing, none twice.
 */
async function expectMapLogTiled(conn: ReplicationConnection, storageId: string, primary: Storage): Promise<void> {
  const prefix = `${conn.names.subjectPrefix}.${storageId}.`;
  const last = await conn.lastSequence(`${prefix}>`, Date.now() + conn.timeoutMs);
  const ranges: ShippedLogRange[] = [];
  for (let seq = 1; seq <= last; seq++) {
    const m = await conn.jsm.streams.getMessage(conn.names.stream, { seq });
    if (!m.subject.startsWith(prefix)) continue;
    ranges.push(...(isStorageSubject(m.subject) ? decodeStorageEvent(m.data, m.subject, seq).mapLog : decodeCommit(m.data, m.subject, seq).mapLog ?? []));
  }
  expect(ranges.length).toBeGreaterThan(0);
  ranges.sort((a, b) => a.start.fileSeq - b.start.fileSeq || a.start.offset - b.start.offset);
  const file = fs.readFileSync((primary.backend as MdboxStorageBackend).paths.mapPrefix + ".log");
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i];
    if (i > 0) expect(r.start, `map log range ${i} starts where range ${i - 1} ended`).toEqual(ranges[i - 1].end);
    expect(r.segments).toHaveLength(1);
    const seg = r.segments[0];
    expect(Buffer.from(seg.bytes).equals(file.subarray(r.start.offset, r.end.offset)), `range ${i}: the map log's bytes`).toBe(true);
  }
  expect(ranges[ranges.length - 1].end.offset, "the last range ends at the map log's end").toBe(file.length);
}
