/**
 * Kills (issue 14), with real nats-server processes:
 * - the primary SIGKILLed during `replicated` commits: every commit whose
 *   commit() returned is on the replica exactly once;
 * - the stream's leader SIGKILLed during `replicated` commits: the same
 *   (commits refused during the election are not acknowledged, and are
 *   published with the next commit after it);
 * - the primary SIGKILLed during `local` commits: the outbox it left is
 *   published by the next process, and every acknowledged commit reaches
 *   the replica exactly once.
 * No sleeps: the worker's progress lines ("ok N") and the processes' exits
 * decide when to kill; the replica is caught up when it applied the last
 * message the stream's leader has for the storage.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { NatsError } from "nats";
import { expect, it } from "vitest";
import { messageCount, recordAt, openStorage, type Storage } from "../../../src/index.js";
import { Outbox, Publisher, Replica, ReplicationConnection, replicatedCommitHooks } from "../../../src/replication/index.js";
import { createOracle, type DovecotOracle } from "../../helpers/dovecot.js";
import { describeNats, useNatsCluster } from "../../helpers/nats.js";
import { doveadmView, portableState } from "../../helpers/replication.js";
import { WorkerProcess } from "../../helpers/worker-process.js";

const WORKER = fileURLToPath(new URL("../../workers/replication-worker.mjs", import.meta.url));

/** Acknowledged commit numbers in a worker journal. */
function acked(journal: string): number[] {
  return fs.readFileSync(journal, "utf8").split("\n").filter((l) => l.startsWith("ok ")).map((l) => Number(l.slice(3)));
}

/** How many times each message number is in the store's INBOX (by its Subject). */
async function counts(storage: Storage): Promise<Map<number, number>> {
  const box = await storage.openMailbox("INBOX");
  const out = new Map<number, number>();
  try {
    await box.refresh();
    const uids = [];
    for (let seq = 1; seq <= messageCount(box.state); seq++) uids.push(recordAt(box.state, seq)!.uid);
    for await (const m of box.fetch(uids, ["body"])) {
      const n = Number(/Subject: m(\d+)/.exec(Buffer.from(m.body).toString("latin1"))![1]);
      out.set(n, (out.get(n) ?? 0) + 1);
    }
  } finally {
    await box.close();
  }
  return out;
}

function expectExactlyOnce(ack: number[], seen: Map<number, number>, context: string): void {
  expect(ack.length, context).toBeGreaterThan(0);
  const missing = ack.filter((n) => seen.get(n) !== 1);
  expect(missing, `acknowledged commits not on the replica exactly once (${missing.map((n) => `m${n}×${seen.get(n) ?? 0}`).join(" ")}); ${context}`).toEqual([]);
  for (const [n, c] of seen) expect(c, `message ${n}; ${context}`).toBe(1);
}

describeNats("kills during replicated and local commits", () => {
  const nats = useNatsCluster();
  const oracles = nats.oracles;

  async function replicate(storageId: string, to: DovecotOracle, conn: ReplicationConnection): Promise<Storage> {
    const store = openStorage(to.location);
    const replica = await Replica.start(conn, store, { storageId, positionFile: path.join(to.dir, "replica.json") });
    await replica.caughtUp();
    expect(await replica.lag()).toBe(0);
    await replica.stop();
    return store;
  }

  /** For failure messages: where the stream stands, as its leader says. */
  async function streamContext(conn: ReplicationConnection, extra: string): Promise<string> {
    let info;
    try {
      info = await conn.jsm.streams.info(conn.names.stream);
    } catch (err) {
      if (!(err instanceof NatsError)) throw err;
      return `${extra}; stream info: ${err.message}`;
    }
    const replicas = (info.cluster?.replicas ?? []).map((r) => `${r.name}${r.current ? "" : ` (behind ${r.lag ?? "?"})`}`).join(", ");
    return `${extra}; stream last_seq ${info.state.last_seq}, leader ${info.cluster?.leader ?? "none"}, replicas ${replicas}`;
  }

  it("the primary SIGKILLed during replicated commits: every acknowledged commit on the replica exactly once", async () => {
    const p = createOracle("sdbox");
    const r = createOracle("mdbox");
    oracles.push(p, r);
    const journal = path.join(p.dir, "journal");
    const worker = new WorkerProcess(WORKER, { servers: nats.cluster.servers, location: p.location, storageId: "kill-primary", mode: "replicated", journal });
    // Killed in the middle of its commits: after its 30th acknowledged one.
    await worker.until("30 acknowledged commits", (w) => w.acked.length >= 30);
    await worker.kill();
    const conn = await ReplicationConnection.open({ servers: nats.cluster.servers });
    try {
      const replicaStore = await replicate("kill-primary", r, conn);
      const ack = acked(journal);
      expectExactlyOnce(ack, await counts(replicaStore), await streamContext(conn, `${ack.length} acknowledged`));
      // A new process on the primary publishes what the killed one had committed but not published, with its next commit.
      const primary = openStorage(p.location, { commitHooks: replicatedCommitHooks(new Publisher(conn, "kill-primary")) });
      const inbox = await primary.openMailbox("INBOX");
      await inbox.transaction().append({ body: "Subject: m100000\n\nafter the kill\n" }).commit();
      await inbox.close();
      const again = await replicate("kill-primary", r, conn);
      expect(await portableState(again, "INBOX")).toEqual(await portableState(primary, "INBOX"));
      await primary.close();
      await again.close();
      await replicaStore.close();
      expect(await doveadmView(r, "INBOX")).toEqual(await doveadmView(p, "INBOX"));
    } finally {
      await conn.close();
    }
  });

  it("the stream leader SIGKILLed during replicated commits: every acknowledged commit on the replica exactly once", async () => {
    const p = createOracle("mdbox");
    const r = createOracle("maildir");
    oracles.push(p, r);
    const conn = await ReplicationConnection.open({ servers: nats.cluster.servers, timeoutMs: 3000 });
    try {
      const primary = openStorage(p.location, { commitHooks: replicatedCommitHooks(new Publisher(conn, "kill-leader")) });
      const inbox = await primary.openMailbox("INBOX");
      const ack: number[] = [];
      let refused = 0;
      let ackedBeforeKill = -1;
      let killedNode = "";
      // 39 commits, the stream's leader SIGKILLed, then commits until 30 more were acknowledged (the election refuses some).
      const started = Date.now();
      for (let i = 1; Date.now() - started < 40_000 && (ackedBeforeKill < 0 || ack.length < ackedBeforeKill + 30); i++) {
        if (i === 40) {
          killedNode = (await conn.jsm.streams.info(conn.names.stream)).cluster?.leader ?? "";
          const k = nats.cluster.nodes.findIndex((n) => n.name === killedNode);
          expect(k, `the stream's leader "${killedNode}" is a node`).toBeGreaterThanOrEqual(0);
          await nats.cluster.kill(k);
          ackedBeforeKill = ack.length;
        }
        try {
          await inbox.transaction().append({ body: `Subject: m${i}\n\nmessage ${i}\n` }).commit();
          ack.push(i);
        } catch (err) {
          expect((err as { code?: string }).code).toBe("REPLICATION_FAILED");
          refused++;
        }
      }
      const context = `leader ${killedNode} killed after ${ackedBeforeKill} acknowledged commits; ${ack.length} acknowledged, ${refused} refused`;
      expect(ackedBeforeKill, context).toBeGreaterThan(0);
      expect(ack.length, context).toBeGreaterThan(ackedBeforeKill + 10);
      // The killed node comes back and catches up; the replica's consumer may be placed on it while it does.
      nats.cluster.restart(nats.cluster.nodes.findIndex((n) => n.name === killedNode));
      await nats.cluster.waitReady();
      await inbox.close();
      const replicaStore = await replicate("kill-leader", r, conn);
      expectExactlyOnce(ack, await counts(replicaStore), await streamContext(conn, context));
      // Nothing the primary committed is missing either: refused commits went out with the next one.
      expect(await portableState(replicaStore, "INBOX")).toEqual(await portableState(primary, "INBOX"));
      await primary.close();
      await replicaStore.close();
      // The refused commits' bodies stayed on the primary (the log refers to them): doveadm sees both stores alike.
      expect(await doveadmView(r, "INBOX")).toEqual(await doveadmView(p, "INBOX"));
      // Commits refused while the stream elected a new leader (about 6 s on loopback) were not acknowledged.
      expect(refused).toBeGreaterThan(0);
    } finally {
      for (let i = 0; i < nats.cluster.nodes.length; i++) {
        const proc = nats.cluster.nodes[i].process;
        if (proc && (proc.exitCode !== null || proc.signalCode !== null)) nats.cluster.restart(i);
      }
      await nats.cluster.waitReady();
      await conn.close();
    }
  });

  it("the primary SIGKILLed during local commits while the stream has no quorum: the next process publishes its outbox; every acknowledged commit exactly once", async () => {
    const p = createOracle("sdbox");
    const r = createOracle("sdbox");
    oracles.push(p, r);
    const journal = path.join(p.dir, "journal");
    const outboxDir = path.join(p.dir, "outbox");
    const worker = new WorkerProcess(WORKER, { servers: nats.cluster.servers, location: p.location, storageId: "kill-local", mode: "local", outboxDir, journal, timeoutMs: 1000 });
    let atQuorumLoss = -1;
    try {
      await worker.until("10 acknowledged commits", (w) => w.acked.length >= 10);
      // Two of the three nodes die: the stream has no quorum, local commits go on, the outbox keeps them.
      await nats.cluster.kill(1);
      await nats.cluster.kill(2);
      atQuorumLoss = worker.acked.length;
      await worker.until("10 acknowledged commits without quorum", (w) => w.acked.length >= atQuorumLoss + 10);
    } finally {
      await worker.kill();
    }
    nats.cluster.restart(1);
    nats.cluster.restart(2);
    await nats.cluster.waitReady();
    const conn = await ReplicationConnection.open({ servers: nats.cluster.servers });
    try {
      expect(fs.readdirSync(outboxDir)).toHaveLength(1); // INBOX's marker, left by the killed process
      const primary = openStorage(p.location);
      const outbox = new Outbox(new Publisher(conn, "kill-local"), outboxDir);
      await outbox.attach(primary);
      await outbox.flush();
      expect(outbox.status().dirty).toEqual([]);
      expect(fs.readdirSync(outboxDir)).toEqual([]);
      await outbox.close();
      const replicaStore = await replicate("kill-local", r, conn);
      const ack = acked(journal);
      expectExactlyOnce(ack, await counts(replicaStore), await streamContext(conn, `${ack.length} acknowledged, ${ack.length - atQuorumLoss} of them after the quorum was lost`));
      expect(await portableState(replicaStore, "INBOX")).toEqual(await portableState(primary, "INBOX"));
      await primary.close();
      await replicaStore.close();
    } finally {
      await conn.close();
    }
  });
}, { doveadm: true });
