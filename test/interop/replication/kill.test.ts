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
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { NatsCluster } from "../../../bench/replication/nats-cluster.js";
import { messageCount, recordAt, openStorage, Outbox, Publisher, Replica, ReplicationConnection, replicatedCommitHooks, type Storage } from "../../../src/index.js";
import { createOracle, type DovecotOracle } from "../../helpers/dovecot.js";
import { decodeCommit } from "../../../src/replication/wire.js";
import { runAndKill } from "../../helpers/kill-worker.js";
import { describeNats } from "../../helpers/nats.js";
import { doveadmView, portableState } from "../../helpers/replication.js";

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

function expectExactlyOnce(ack: number[], seen: Map<number, number>): void {
  expect(ack.length).toBeGreaterThan(0);
  for (const n of ack) expect(seen.get(n), `acknowledged commit ${n}`).toBe(1);
  for (const [n, c] of seen) expect(c, `message ${n}`).toBe(1);
}

describeNats("kills during replicated and local commits", () => {
  let cluster: NatsCluster;
  const oracles: DovecotOracle[] = [];
  beforeAll(async () => {
    cluster = await NatsCluster.start(3);
  });
  afterAll(async () => {
    await cluster?.stop();
    for (const o of oracles) await o.cleanup();
  });

  async function replicate(storageId: string, to: DovecotOracle, conn: ReplicationConnection): Promise<Storage> {
    const store = openStorage(to.location);
    const replica = await Replica.start(conn, store, { storageId, positionFile: path.join(to.dir, "replica.json") });
    await replica.caughtUp();
    expect(await replica.lag()).toBe(0);
    await replica.stop();
    return store;
  }

  it("the primary SIGKILLed during replicated commits: every acknowledged commit on the replica exactly once", async () => {
    const p = createOracle("sdbox");
    const r = createOracle("mdbox");
    oracles.push(p, r);
    const journal = path.join(p.dir, "journal");
    await runAndKill(WORKER, [JSON.stringify({ servers: cluster.servers, location: p.location, storageId: "kill-primary", mode: "replicated", journal })], { killAfterMs: 700 });
    const conn = await ReplicationConnection.open({ servers: cluster.servers });
    try {
      const replicaStore = await replicate("kill-primary", r, conn);
      expectExactlyOnce(acked(journal), await counts(replicaStore));
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
    const conn = await ReplicationConnection.open({ servers: cluster.servers, timeoutMs: 3000 });
    try {
      const primary = openStorage(p.location, { commitHooks: replicatedCommitHooks(new Publisher(conn, "kill-leader")) });
      const inbox = await primary.openMailbox("INBOX");
      const ack: number[] = [];
      let refused = 0;
      let killed = -1;
      const started = Date.now();
      for (let i = 1; Date.now() - started < 40_000 && (killed < 0 || ack.length < killed + 30); i++) {
        if (i === 40) {
          const leader = (await conn.jsm.streams.info(conn.names.stream)).cluster!.leader!;
          killed = cluster.nodes.findIndex((n) => n.name === leader);
          await cluster.kill(killed);
          killed = ack.length;
        }
        try {
          await inbox.transaction().append({ body: `Subject: m${i}\n\nmessage ${i}\n` }).commit();
          ack.push(i);
        } catch (err) {
          expect((err as { code?: string }).code).toBe("REPLICATION_FAILED");
          refused++;
        }
      }
      expect(killed).toBeGreaterThan(0);
      // The killed node comes back and catches up (the replica reads from any node).
      cluster.restart(cluster.nodes.findIndex((n) => n.process!.signalCode !== null));
      await cluster.waitReady();
      expect(ack.length).toBeGreaterThan(killed + 10);
      await inbox.close();
      const replicaStore = await replicate("kill-leader", r, conn);
      const seen = await counts(replicaStore);
      const missing = ack.filter((n) => seen.get(n) !== 1);
      if (missing.length > 0) {
        const onPrimary = await counts(primary);
        const info = await conn.jsm.streams.info(conn.names.stream);
        console.log("DEBUG missing", missing, "acked", ack.length, "killed at", killed, "refused", refused, "on primary", missing.map((n) => onPrimary.get(n)), "stream", JSON.stringify(info.state));
        for (let seq = 1; seq <= info.state.last_seq; seq++) {
          const m = await conn.jsm.streams.getMessage(conn.names.stream, { seq });
          const c = decodeCommit(m.data, m.subject, seq);
          console.log("DEBUG msg", seq, c.start, c.end, String(c.modseq), c.bodies.map((b) => b.uid).join(","));
        }
      }
      expectExactlyOnce(ack, seen);
      // Nothing the primary committed is missing either: refused commits went out with the next one.
      expect(await portableState(replicaStore, "INBOX")).toEqual(await portableState(primary, "INBOX"));
      await primary.close();
      await replicaStore.close();
      // The refused commits' bodies stayed on the primary (the log refers to them): doveadm sees both stores alike.
      expect(await doveadmView(r, "INBOX")).toEqual(await doveadmView(p, "INBOX"));
      // Commits refused while the stream elected a new leader (about 6 s on loopback) were not acknowledged.
      expect(refused).toBeGreaterThan(0);
    } finally {
      for (let i = 0; i < cluster.nodes.length; i++) {
        const proc = cluster.nodes[i].process;
        if (proc && (proc.exitCode !== null || proc.signalCode !== null)) cluster.restart(i);
      }
      await cluster.waitReady();
      await conn.close();
    }
  });

  it("the primary SIGKILLed during local commits while the stream has no quorum: the next process publishes its outbox; every acknowledged commit exactly once", async () => {
    const p = createOracle("sdbox");
    const r = createOracle("sdbox");
    oracles.push(p, r);
    const journal = path.join(p.dir, "journal");
    const outboxDir = path.join(p.dir, "outbox");
    const worker = spawn(process.execPath, [WORKER, JSON.stringify({ servers: cluster.servers, location: p.location, storageId: "kill-local", mode: "local", outboxDir, journal, timeoutMs: 1000 })], { stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise((resolve) => worker.once("exit", resolve));
    await new Promise<void>((resolve, reject) => {
      worker.stdout.on("data", (d) => String(d).includes("ready") && resolve());
      worker.once("exit", (code) => reject(new Error(`worker exited ${code}`)));
    });
    // Two of the three nodes die: the stream has no quorum, local commits go on, the outbox keeps them.
    await new Promise((resolve) => setTimeout(resolve, 200));
    await cluster.kill(1);
    await cluster.kill(2);
    await new Promise((resolve) => setTimeout(resolve, 700));
    worker.kill("SIGKILL");
    await exited;
    cluster.restart(1);
    cluster.restart(2);
    await cluster.waitReady();
    const conn = await ReplicationConnection.open({ servers: cluster.servers });
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
      expectExactlyOnce(acked(journal), await counts(replicaStore));
      expect(await portableState(replicaStore, "INBOX")).toEqual(await portableState(primary, "INBOX"));
      await primary.close();
      await replicaStore.close();
    } finally {
      await conn.close();
    }
  });
}, { doveadm: true });
