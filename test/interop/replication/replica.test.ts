/**
 * Issue 14: a primary publishes every commit (replicated mode) to a real
 * 3-node JetStream cluster; a replica of another format applies the stream.
 * After random work (save, flags, keywords, copy, move, expunge, purge, and
 * bodies above JetStream's 1 MB message limit; each kind is in every seed's
 * work), the replica's `mailstore replay --json` (run as a command; its
 * format-independent part) equals the primary's, and
 * doveadm shows both stores alike: status (UIDVALIDITY, UIDNEXT,
 * HIGHESTMODSEQ), and `fetch 'uid flags guid modseq'` + `text` per message.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { NatsCluster } from "../../../bench/replication/nats-cluster.js";
import { openStorage } from "../../../src/index.js";
import { Publisher, Replica, ReplicationConnection, replicatedCommitHooks } from "../../../src/replication/index.js";
import { createOracle, type DovecotOracle, type MailFormat } from "../../helpers/dovecot.js";
import { describeNats } from "../../helpers/nats.js";
import { doveadmView, expectSameDoveadmViews, expectSameReplays, lagFrom, portableState, randomWork, REPLICATED_MAILBOXES } from "../../helpers/replication.js";

describeNats("replication through JetStream: random work on a primary, a replica of another format", () => {
  let cluster: NatsCluster;
  beforeAll(async () => {
    cluster = await NatsCluster.start(3);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  // An mbox message's GUID is its header MD5 (what doveadm shows), which a save cannot set: an mbox replica has its own GUIDs.
  const pairs: Array<[MailFormat, MailFormat, number]> = [["mdbox", "maildir", 1401], ["sdbox", "mdbox", 1402], ["mbox", "sdbox", 1405], ["sdbox", "mbox", 1408]];
  for (const [from, to, seed] of pairs) {
    const sameGuids = to !== "mbox";
    it(`${from} → ${to} (seed ${seed})${sameGuids ? "" : ", GUIDs aside"}`, async () => {
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
        for (const kind of ["save", "flags", "keyword", "copy", "move", "expunge", "purge"]) {
          expect(steps.some((s) => s === kind || s.includes(`: ${kind} `)), `seed ${seed} includes a ${kind}; steps:\n${steps.join("\n")}`).toBe(true);
        }
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
        await expectSameReplays(replicaStore, primary, REPLICATED_MAILBOXES, `seed ${seed}`);
        await primary.close();
        await replicaStore.close();
        await expectSameDoveadmViews(r, p, REPLICATED_MAILBOXES, { guids: sameGuids });
        p.assertNoStderrProblems();
        r.assertNoStderrProblems();
      } finally {
        await conn.close();
        for (const o of oracles) await o.cleanup();
      }
    });
  }

  it("a replica stopped mid-run catches up from its stored position to lag 0, nothing applied twice, even from a position file older than what it applied", async () => {
    const conn = await ReplicationConnection.open({ servers: cluster.servers });
    const p = createOracle("mdbox");
    const r = createOracle("sdbox");
    try {
      const storageId = "t-restart";
      const primary = openStorage(p.location, { commitHooks: replicatedCommitHooks(new Publisher(conn, storageId)) });
      await primary.createMailbox("Other");
      await randomWork(primary, 1403, 20);
      const positionFile = path.join(r.dir, "replica-position.json");
      const replicaStore = openStorage(r.location);
      let firstApplied!: () => void;
      const applying = new Promise<void>((resolve) => (firstApplied = resolve));
      let replica = await Replica.start(conn, replicaStore, { storageId, positionFile, onApplied: () => firstApplied() });
      // Stopped once it applied its first message of a backlog of 20 commits, while the primary goes on.
      const working = randomWork(primary, 1404, 20);
      await applying;
      await replica.stop();
      await working;
      const stoppedAt = JSON.parse(fs.readFileSync(positionFile, "utf8")).streamSeq as number;
      expect(await lagFrom(conn, storageId, stoppedAt)).toBeGreaterThan(0);

      replica = await Replica.start(conn, replicaStore, { storageId, positionFile });
      await replica.caughtUp();
      expect(await replica.lag()).toBe(0);
      const first = replica.status();
      expect(first.appliedSeq).toBeGreaterThan(stoppedAt);
      await replica.stop();
      for (const name of REPLICATED_MAILBOXES) expect(await portableState(replicaStore, name)).toEqual(await portableState(primary, name));

      // A replica killed after applying but before saving its position: everything again from the start of the stream.
      const saved = JSON.parse(fs.readFileSync(positionFile, "utf8"));
      fs.writeFileSync(positionFile, JSON.stringify({ ...saved, streamSeq: 0 }));
      replica = await Replica.start(conn, replicaStore, { storageId, positionFile });
      await replica.caughtUp();
      const again = replica.status();
      expect(again.appliedTransactions).toBe(0);
      expect(again.skippedTransactions).toBeGreaterThan(0);
      expect(again.appliedSeq).toBe(first.appliedSeq);
      await replica.stop();
      for (const name of REPLICATED_MAILBOXES) expect(await portableState(replicaStore, name)).toEqual(await portableState(primary, name));
      await expectSameReplays(replicaStore, primary, REPLICATED_MAILBOXES, "seeds 1403, 1404");
      await primary.close();
      await replicaStore.close();
      for (const name of REPLICATED_MAILBOXES) expect(await doveadmView(r, name)).toEqual(await doveadmView(p, name));
    } finally {
      await conn.close();
      await p.cleanup();
      await r.cleanup();
    }
  });
}, { doveadm: true });
