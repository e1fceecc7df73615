/**
 * Issue 14: a primary publishes every commit (replicated mode) to a real
 * 3-node JetStream cluster; a replica of another format applies the stream.
 * After random work (save, flags, keywords, copy, move, expunge, purge, and
 * bodies above JetStream's 1 MB message limit), the replica's replayed state
 * (format-independent part of `replay --json`) equals the primary's, and
 * doveadm shows both stores alike: status (UIDVALIDITY, UIDNEXT,
 * HIGHESTMODSEQ), and `fetch 'uid flags guid modseq'` + `text` per message.
 */
import * as path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { NatsCluster } from "../../../bench/replication/nats-cluster.js";
import { openStorage, Publisher, Replica, ReplicationConnection, replicatedCommitHooks } from "../../../src/index.js";
import { createOracle, type DovecotOracle, type MailFormat } from "../../helpers/dovecot.js";
import { describeNats } from "../../helpers/nats.js";
import { doveadmView, portableState, randomWork, REPLICATED_MAILBOXES } from "../../helpers/replication.js";

describeNats("replication through JetStream: random work on a primary, a replica of another format", () => {
  let cluster: NatsCluster;
  beforeAll(async () => {
    cluster = await NatsCluster.start(3);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  const pairs: Array<[MailFormat, MailFormat, number]> = [["mdbox", "maildir", 1401], ["sdbox", "mdbox", 1402]];
  for (const [from, to, seed] of pairs) {
    it(`${from} → ${to} (seed ${seed})`, async () => {
      const oracles: DovecotOracle[] = [];
      const conn = await ReplicationConnection.open({ servers: cluster.servers });
      try {
        const p = createOracle(from);
        const r = createOracle(to);
        oracles.push(p, r);
        const storageId = `t-${from}-${to}`;
        const publisher = new Publisher(conn, storageId);
        const primary = openStorage(p.location, { commitHooks: replicatedCommitHooks(publisher) });
        await primary.createMailbox("Other");
        const steps = await randomWork(primary, seed, 40, { bigBodyEvery: 17 });
        expect(steps.length).toBe(40);
        expect(steps.some((s) => s === "purge"), "the seed includes a purge").toBe(true);
        // Bodies above the inline budget (700 KiB messages) went through the object store, keyed by GUID.
        const bucket = await conn.js.views.os(conn.names.bodyBucket);
        expect((await bucket.list()).length).toBeGreaterThan(0);

        const replicaStore = openStorage(r.location);
        const replica = await Replica.start(conn, replicaStore, { storageId, positionFile: path.join(r.dir, "replica-position.json") });
        await replica.caughtUp();
        expect(replica.status().lag).toBe(0);
        expect(await replica.lag()).toBe(0);
        await replica.stop();

        for (const name of REPLICATED_MAILBOXES) {
          expect(await portableState(replicaStore, name), `replay ${name}, steps:\n${steps.join("\n")}`).toEqual(await portableState(primary, name));
        }
        await primary.close();
        await replicaStore.close();
        for (const name of REPLICATED_MAILBOXES) {
          expect(await doveadmView(r, name), `doveadm ${name}`).toEqual(await doveadmView(p, name));
        }
        p.assertNoStderrProblems();
        r.assertNoStderrProblems();
      } finally {
        await conn.close();
        for (const o of oracles) await o.cleanup();
      }
    });
  }
});
