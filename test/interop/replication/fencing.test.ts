/**
 * Fencing and failover (issue 14): two primaries writing the same mailbox.
 * A replica is promoted (one call) and commits; the old primary's next
 * commit is fenced with ReplicationFencedError and writes nothing, neither
 * to its own log nor to the stream. A writer whose cached expectation is
 * stale at the very publish (a race past the pre-commit check) is refused
 * by JetStream's compare-and-append, with the same typed error: also
 * through real commits of two primaries in flight at once (one's publish
 * held while the other is promoted and commits).
 */
import * as path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { NatsCluster } from "../../../bench/replication/nats-cluster.js";
import { openStorage, ReplicationFencedError, type Storage } from "../../../src/index.js";
import { Publisher, Replica, ReplicationConnection, replicatedCommitHooks, mailboxSubject } from "../../../src/replication/index.js";
import { lastOnSubject, OwnPublishLanded, takeOver } from "../../../src/replication/publisher.js";
import { createOracle, sampleMessage, type DovecotOracle } from "../../helpers/dovecot.js";
import { describeNats } from "../../helpers/nats.js";
import { catchUpOnce, doveadmView, portableState } from "../../helpers/replication.js";
import { gatePublishes } from "../../helpers/nats-gates.js";

describeNats("fencing: two primaries writing one mailbox", () => {
  let cluster: NatsCluster;
  let conn: ReplicationConnection;
  const oracles: DovecotOracle[] = [];
  beforeAll(async () => {
    cluster = await NatsCluster.start(3);
    conn = await ReplicationConnection.open({ servers: cluster.servers });
  });
  afterAll(async () => {
    await conn?.close();
    await cluster?.stop();
    for (const o of oracles) await o.cleanup();
  });

  it("the promoted replica writes on; the old primary is fenced with a typed error and writes nothing", async () => {
    const a = createOracle("sdbox");
    const b = createOracle("mdbox");
    const c = createOracle("maildir");
    oracles.push(a, b, c);
    const storageId = "fence";
    const primaryA: Storage = openStorage(a.location, { commitHooks: replicatedCommitHooks(new Publisher(conn, storageId)) });
    const inboxA = await primaryA.openMailbox("INBOX");
    for (let i = 1; i <= 3; i++) await inboxA.transaction().append({ body: sampleMessage(i), flags: ["\\Seen"] }).commit();
    const subject = mailboxSubject(conn.names, storageId, inboxA.guid()!);

    // B follows A; a promotion that has not applied everything A published is refused.
    const storeB = openStorage(b.location);
    const positionFile = path.join(b.dir, "replica.json");
    const behind = await Replica.start(conn, storeB, { storageId, positionFile });
    await behind.caughtUp();
    await behind.stop();
    await inboxA.transaction().append({ body: sampleMessage(10), flags: ["\\Seen"] }).commit();
    await expect(behind.promote()).rejects.toBeInstanceOf(ReplicationFencedError);
    // Caught up, it is promoted: one call (it publishes a takeover message that fences A).
    const replicaB = await Replica.start(conn, storeB, { storageId, positionFile });
    await replicaB.caughtUp();
    const publisherB = await replicaB.promote();
    const primaryB = openStorage(b.location, { commitHooks: replicatedCommitHooks(publisherB) });
    const inboxB = await primaryB.openMailbox("INBOX");
    await inboxB.transaction().append({ body: sampleMessage(4) }).commit();
    await inboxB.transaction().flags([{ uid1: 1, uid2: 2 }], "add", ["\\Flagged"]).commit();
    const afterB = await lastOnSubject(conn, subject);
    expect(afterB.lastSeq).toBe(7); // A's 4 commits, B's takeover, B's 2 commits

    // A, still running, commits: fenced before anything is written.
    const before = inboxA.position;
    const err = await inboxA.transaction().append({ body: sampleMessage(5) }).commit().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReplicationFencedError);
    expect((err as ReplicationFencedError).code).toBe("REPLICATION_FENCED");
    expect((err as ReplicationFencedError).subject).toBe(subject);
    expect((err as ReplicationFencedError).expectedSequence).toBe(4);
    expect((err as Error).message).toContain(subject);
    expect(inboxA.position).toEqual(before);
    await inboxA.refresh();
    expect(inboxA.position).toEqual(before);
    expect((await lastOnSubject(conn, subject)).lastSeq).toBe(7);
    // And it stays fenced.
    await expect(inboxA.transaction().flags([{ uid1: 1, uid2: 1 }], "add", ["\\Answered"]).commit()).rejects.toBeInstanceOf(ReplicationFencedError);

    // A new process on A's store (nothing cached) is fenced too: the subject's last writer is another log.
    await primaryA.close();
    const reopenedA = openStorage(a.location, { commitHooks: replicatedCommitHooks(new Publisher(conn, storageId)) });
    const again = await reopenedA.openMailbox("INBOX");
    await expect(again.transaction().append({ body: sampleMessage(6) }).commit()).rejects.toThrow(/promote this store/);
    await reopenedA.close();
    // Without the pre-commit check, the commit reaches A's own log, and the stream refuses it: the same typed error.
    const unchecked = openStorage(a.location, { commitHooks: replicatedCommitHooks(new Publisher(conn, storageId), { precheck: false }) });
    const uncheckedInbox = await unchecked.openMailbox("INBOX");
    await expect(uncheckedInbox.transaction().append({ body: sampleMessage(7) }).commit()).rejects.toBeInstanceOf(ReplicationFencedError);
    expect((await lastOnSubject(conn, subject)).lastSeq).toBe(7);
    await unchecked.close();

    // A third store following the stream has A's commits, then B's, exactly once.
    const storeC = openStorage(c.location);
    await catchUpOnce(conn, storeC, storageId, path.join(c.dir, "replica.json"));
    await inboxB.close();
    expect(await portableState(storeC, "INBOX")).toEqual(await portableState(primaryB, "INBOX"));
    await primaryB.close();
    await storeB.close();
    await storeC.close();
    expect(await doveadmView(c, "INBOX")).toEqual(await doveadmView(b, "INBOX"));
  });

  it("two primaries with commits in flight at once: the one whose publish comes second is fenced (typed error), and the stream has each acknowledged commit once", async () => {
    const a = createOracle("sdbox");
    const b = createOracle("mdbox");
    const c = createOracle("maildir");
    oracles.push(a, b, c);
    const storageId = "fence-concurrent";
    // Each primary its own connection: only A's publishes are held.
    const connA = await ReplicationConnection.open({ servers: cluster.servers });
    try {
      const primaryA = openStorage(a.location, { commitHooks: replicatedCommitHooks(new Publisher(connA, storageId)) });
      const inboxA = await primaryA.openMailbox("INBOX");
      for (let i = 1; i <= 3; i++) await inboxA.transaction().append({ body: sampleMessage(i) }).commit();
      const subject = mailboxSubject(conn.names, storageId, inboxA.guid()!);
      const storeB = openStorage(b.location);
      const replicaB = await Replica.start(conn, storeB, { storageId, positionFile: path.join(b.dir, "replica.json") });
      await replicaB.caughtUp();

      // A's 4th commit passed its fencing check and is in A's log; its publish is held.
      const gate = gatePublishes(connA, { onlyFirst: true });
      const inFlightA = inboxA.transaction().append({ body: sampleMessage(4) }).commit();
      await gate.held;
      const logA = inboxA.position;
      // Meanwhile B, caught up with everything A published, is promoted and commits.
      await replicaB.caughtUp();
      const primaryB = openStorage(b.location, { commitHooks: replicatedCommitHooks(await replicaB.promote()) });
      const inboxB = await primaryB.openMailbox("INBOX");
      await inboxB.transaction().append({ body: sampleMessage(5) }).commit();
      const afterB = (await lastOnSubject(conn, subject)).lastSeq;

      // A's publish goes out now, expecting the sequence B's takeover moved: JetStream refuses it.
      gate.release();
      const err = await inFlightA.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ReplicationFencedError);
      expect((err as ReplicationFencedError).subject).toBe(subject);
      expect((await lastOnSubject(conn, subject)).lastSeq, "nothing of A's after B's takeover").toBe(afterB);
      // A stays fenced: its next commit writes nothing, locally or in the stream.
      await expect(inboxA.transaction().append({ body: sampleMessage(6) }).commit()).rejects.toBeInstanceOf(ReplicationFencedError);
      expect(inboxA.position).toEqual(logA);
      expect((await lastOnSubject(conn, subject)).lastSeq).toBe(afterB);

      // A third store following the stream: A's three acknowledged commits, then B's, each once; not A's refused one.
      const storeC = openStorage(c.location);
      await catchUpOnce(conn, storeC, storageId, path.join(c.dir, "replica.json"));
      await inboxB.close();
      await inboxA.close();
      expect(await portableState(storeC, "INBOX")).toEqual(await portableState(primaryB, "INBOX"));
      await primaryA.close();
      await primaryB.close();
      await storeB.close();
      await storeC.close();
      const onC = (await doveadmView(c, "INBOX") as { messages: Array<{ text: string }> }).messages.map((m) => Number(/Subject: Test message (\d+)/.exec(m.text)?.[1]));
      expect(onC, "doveadm on the third store: A's acknowledged commits and B's, once each").toEqual([1, 2, 3, 5]);
      expect(await doveadmView(c, "INBOX")).toEqual(await doveadmView(b, "INBOX"));
    } finally {
      await connA.close();
    }
  });

  it("at publish, JetStream's compare-and-append refuses a stale expectation: another writer's message fences (typed error, nothing in the stream); this writer's own late-stored message does not", async () => {
    const a = createOracle("sdbox");
    const b = createOracle("mdbox");
    oracles.push(a, b);
    const publisher = new Publisher(conn, "race");
    const store = openStorage(a.location, { commitHooks: replicatedCommitHooks(publisher) });
    const inbox = await store.openMailbox("INBOX");
    await inbox.transaction().append({ body: sampleMessage(1) }).commit();
    await inbox.transaction().append({ body: sampleMessage(2) }).commit();
    const subject = publisher.subjectOf(inbox);
    const cursor = await publisher.cursor(subject);
    const lastSeq = cursor.lastSeq;

    // A publish whose acknowledgement this writer did not wait for, stored after all: not a fence, and not sent twice.
    const stale = { ...cursor, lastSeq: lastSeq - 1, end: undefined, modseq: undefined };
    const built = await publisher.build(inbox, { end: inbox.position, state: inbox.state }, stale);
    await expect(publisher.publish(subject, built, stale)).rejects.toBeInstanceOf(OwnPublishLanded);
    await publisher.publishCommit(inbox, { end: inbox.position, state: inbox.state });
    expect((await lastOnSubject(conn, subject)).lastSeq).toBe(lastSeq);
    expect(publisher.fencedBy).toBeUndefined();

    // Another store publishes on the subject (here a takeover message) between this writer's check and its publish.
    const other = openStorage(b.location);
    const otherInbox = await other.openMailbox("INBOX");
    await takeOver(new Publisher(conn, "race", new Map([["INBOX", inbox.guid()!]])), otherInbox, inbox.guid()!, lastSeq);
    const mine = await publisher.cursor(subject);
    const next = await publisher.build(inbox, { end: inbox.position, state: inbox.state }, { ...mine, end: { fileSeq: inbox.position.fileSeq, offset: 0 }, modseq: undefined });
    const err = await publisher.publish(subject, next, mine).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReplicationFencedError);
    expect((err as ReplicationFencedError).expectedSequence).toBe(lastSeq);
    expect((await lastOnSubject(conn, subject)).lastSeq).toBe(lastSeq + 1);
    await other.close();
    await store.close();
  });

  it("a store taking a subject back (its log where its last commit ended) stores its takeover: not taken for a duplicate of that commit", async () => {
    const a = createOracle("sdbox");
    const b = createOracle("mdbox");
    oracles.push(a, b);
    const publisherA = new Publisher(conn, "back");
    const storeA = openStorage(a.location, { commitHooks: replicatedCommitHooks(publisherA) });
    const inboxA = await storeA.openMailbox("INBOX");
    await inboxA.transaction().append({ body: sampleMessage(1) }).commit();
    const subject = publisherA.subjectOf(inboxA);
    const committed = await lastOnSubject(conn, subject);
    // B takes the subject over and writes nothing; A takes it back with its log unchanged, at its last commit's end and modseq.
    const storeB = openStorage(b.location);
    const inboxB = await storeB.openMailbox("INBOX");
    await takeOver(new Publisher(conn, "back", new Map([["INBOX", inboxA.guid()!]])), inboxB, inboxA.guid()!, committed.lastSeq);
    expect(inboxA.position).toEqual(committed.end);
    await takeOver(publisherA, inboxA, inboxA.guid()!, committed.lastSeq + 1);
    const last = await lastOnSubject(conn, subject);
    expect(last.lastSeq, "A's takeover stored after B's").toBe(committed.lastSeq + 2);
    expect(last.writerGuid).toBe(inboxA.guid());
    // A commits on from there.
    await inboxA.transaction().append({ body: sampleMessage(2) }).commit();
    expect((await lastOnSubject(conn, subject)).lastSeq).toBe(committed.lastSeq + 3);
    await inboxB.close();
    await storeB.close();
    await storeA.close();
  });
}, { doveadm: true });
