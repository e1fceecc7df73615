/**
 * Change streams across nodes (issue 14): commits made on node A reach a
 * subscriber on node B in order, with the same batches a local
 * `mailbox.changes()` on A delivers (positions, modseqs, changes), and a
 * subscription resumes from a position. On a replica node, the replica's
 * own `mailbox.changes()` delivers the same changes with the same modseqs.
 */
import * as path from "node:path";
import { expect, it } from "vitest";
import { openStorage, type ChangeBatch } from "../../../src/index.js";
import { Publisher, remoteChanges, Replica, ReplicationConnection, replicatedCommitHooks } from "../../../src/replication/index.js";
import { createOracle, sampleMessage } from "../../helpers/dovecot.js";
import { describeNats, useNatsCluster } from "../../helpers/nats.js";

/** What a subscriber received, and a wait for a number of batches that resolves on the push that reaches it (no polling). */
function received(): { batches: ChangeBatch[]; push(batch: ChangeBatch): void; count(n: number, of?: (b: ChangeBatch) => boolean): Promise<void> } {
  const batches: ChangeBatch[] = [];
  const waits = new Set<() => void>();
  return {
    batches,
    push(batch) {
      batches.push(batch);
      for (const check of [...waits]) check();
    },
    count(n, of = () => true) {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${batches.filter(of).length} of ${n} batches after 10 s`)), 10_000);
        const check = () => {
          if (batches.filter(of).length < n) return;
          waits.delete(check);
          clearTimeout(timer);
          resolve();
        };
        waits.add(check);
        check();
      });
    },
  };
}

describeNats("change streams across nodes", () => {
  const nats = useNatsCluster();
  const oracles = nats.oracles;

  it("node B gets node A's batches in order, as A's local stream has them, and resumes from a position", async () => {
    const a = createOracle("mdbox");
    const b = createOracle("maildir");
    oracles.push(a, b);
    // Node A and node B each have their own connection (to different cluster nodes).
    const connA = await ReplicationConnection.open({ servers: [nats.cluster.servers[0]] });
    const connB = await ReplicationConnection.open({ servers: [nats.cluster.servers[1]] });
    try {
      const storageId = "changes";
      const primary = openStorage(a.location, { commitHooks: replicatedCommitHooks(new Publisher(connA, storageId)) });
      const inbox = await primary.openMailbox("INBOX");
      await inbox.transaction().append({ body: sampleMessage(1) }).commit(); // history before anyone subscribes
      const guid = inbox.guid()!;

      const local = received();
      const remote = received();
      const onReplica = received();
      const localSub = inbox.changes().subscribe((batch) => local.push(batch));
      // From the position after the history: what follows is delivered however late the remote consumer is ready.
      const remoteSub = remoteChanges(connB, { storageId, mailboxGuid: guid, from: inbox.position }).subscribe({ next: (batch) => remote.push(batch) });
      const replicaStore = openStorage(b.location);
      const replica = await Replica.start(connB, replicaStore, { storageId, positionFile: path.join(b.dir, "replica.json") });
      await replica.caughtUp();
      const replicaBox = await replicaStore.openMailbox("INBOX");
      const replicaSub = replicaBox.changes().subscribe((batch) => onReplica.push(batch));

      for (let i = 2; i <= 6; i++) await inbox.transaction().append({ body: sampleMessage(i), flags: i % 2 ? ["\\Seen", "work"] : [] }).commit();
      await inbox.transaction().flags([{ uid1: 1, uid2: 3 }], "add", ["\\Flagged", "$Label1"]).commit();
      await inbox.transaction().flags([{ uid1: 2, uid2: 2 }], "remove", ["\\Flagged"]).commit();
      await inbox.transaction().expunge([{ uid1: 4, uid2: 5 }]).commit();
      await local.count(8);
      await remote.count(8);
      expect(remote.batches).toEqual(local.batches);
      expect(remote.batches.map((x) => x.modseq)).toEqual([...remote.batches.map((x) => x.modseq)].sort((x, y) => (x < y ? -1 : 1)));

      // The replica node's own stream: the same changes at the same modseqs (positions are the replica's log's).
      await onReplica.count(8, (x) => x.changes.length > 0);
      const strip = (xs: ChangeBatch[]) => xs.filter((x) => x.changes.length > 0).map((x) => ({ modseq: x.modseq, changes: x.changes }));
      expect(strip(onReplica.batches)).toEqual(strip(local.batches));

      // Resume from a position: exactly what came after it.
      const resumed = received();
      const resumeSub = remoteChanges(connB, { storageId, mailboxGuid: guid, from: local.batches[3].end }).subscribe((batch) => resumed.push(batch));
      await resumed.count(4);
      expect(resumed.batches).toEqual(local.batches.slice(4));
      // By name, from the storage's subjects.
      const byName = received();
      const byNameSub = remoteChanges(connB, { storageId, mailbox: "INBOX", from: local.batches[6].end }).subscribe((batch) => byName.push(batch));
      await byName.count(1);
      expect(byName.batches).toEqual(local.batches.slice(7));

      for (const s of [localSub, remoteSub, replicaSub, resumeSub, byNameSub]) s.unsubscribe();
      await replica.stop();
      await replicaBox.close();
      await primary.close();
      await replicaStore.close();
    } finally {
      await connA.close();
      await connB.close();
    }
  });
  it("on a seeded subject, node B's batches start from the seeded state: changes to seeded messages are in them, as in A's local stream", async () => {
    const a = createOracle("sdbox");
    oracles.push(a);
    // Written before replication: the subject starts with an explicit seed (no log bytes), in three parts.
    const plain = openStorage(a.location);
    const before = await plain.openMailbox("INBOX");
    for (let i = 1; i <= 5; i++) await before.transaction().append({ body: sampleMessage(i), flags: i % 2 ? ["\\Seen", "work"] : ["$Label1"] }).commit();
    await before.transaction().expunge([{ uid1: 2, uid2: 2 }]).commit();
    await before.close();
    await plain.close();
    // A CONDSTORE client's first use: the primary keeps a modseq per message, and the seed carries them.
    await a.chownRoot();
    await a.run(["fetch", "modseq", "mailbox", "INBOX", "all"]);
    const connA = await ReplicationConnection.open({ servers: [nats.cluster.servers[0]] });
    const connB = await ReplicationConnection.open({ servers: [nats.cluster.servers[1]] });
    try {
      const storageId = "changes-seeded";
      const publisher = new Publisher(connA, storageId, new Map(), { seedPartMessages: 2 });
      const primary = openStorage(a.location, { commitHooks: replicatedCommitHooks(publisher) });
      const inbox = await primary.openMailbox("INBOX");
      expect(await publisher.seed(inbox)).toBe(true);
      const local = received();
      const remote = received();
      const localSub = inbox.changes().subscribe((batch) => local.push(batch));
      const remoteSub = remoteChanges(connB, { storageId, mailboxGuid: inbox.guid()!, from: inbox.position }).subscribe({ next: (batch) => remote.push(batch) });

      await inbox.transaction().flags([{ uid1: 1, uid2: 5 }], "add", ["\\Flagged", "\\Seen"]).commit();
      await inbox.transaction().flags([{ uid1: 3, uid2: 4 }], "remove", ["work", "$Label1"]).commit();
      await inbox.transaction().append({ body: sampleMessage(6), flags: ["work"] }).commit();
      await inbox.transaction().expunge([{ uid1: 1, uid2: 4 }]).commit();
      await local.count(4);
      await remote.count(4);
      expect(local.batches.every((b) => b.changes.length > 0)).toBe(true);
      expect(remote.batches).toEqual(local.batches);

      for (const s of [localSub, remoteSub]) s.unsubscribe();
      await inbox.close();
      await primary.close();
    } finally {
      await connA.close();
      await connB.close();
    }
  });
}, { doveadm: true });
