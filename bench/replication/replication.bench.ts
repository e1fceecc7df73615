/**
 * Issue 14's figures, against a real 3-node nats-server cluster on loopback
 * (started here, stopped by PID):
 * - commit throughput and latency (p50/p99): local-only commits, `replicated`
 *   commits (return after JetStream's acknowledgement), `local` commits
 *   (return after the local log and the outbox marker); 1 and 4 replicated
 *   committers at once on distinct mdbox mailboxes (concurrent.bench.ts);
 * - cross-node change-stream latency: from commit() start on node A, and
 *   from A's own local change stream, to remoteChanges() on node B
 *   (a connection to another cluster node);
 * - a replica's catch-up rate after 10,000 transactions it missed.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openStorage, type CommitHooks, type Storage } from "../../src/index.js";
import { Outbox, Publisher, remoteChanges, Replica, ReplicationConnection, replicatedCommitHooks } from "../../src/replication/index.js";
import { fmt } from "../util.js";
import { NatsCluster } from "./nats-cluster.js";
import { concurrentCommitsRow } from "./concurrent.bench.js";

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const body = (i: number) => `From: a@example.com\nSubject: bench ${i}\n\nmessage ${i}\n`;

async function commitRun(
  label: string, location: string, hooks: CommitHooks | undefined, n: number, after?: (s: Storage) => Promise<void>, beforeClose?: () => Promise<void>,
): Promise<string> {
  const storage = openStorage(location, hooks ? { commitHooks: hooks } : {});
  await after?.(storage);
  const inbox = await storage.openMailbox("INBOX");
  for (let i = 0; i < 20; i++) await inbox.transaction().append({ body: body(i) }).commit(); // warm-up
  const lat: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await inbox.transaction().append({ body: body(i) }).commit();
    lat.push(performance.now() - s);
  }
  const total = (performance.now() - t0) / 1000;
  await beforeClose?.();
  await storage.close();
  lat.sort((a, b) => a - b);
  return `| commit, ${label}: ${n} one-message appends (sdbox) | ${fmt(total)} s | ${fmt(n / total)} commits/s | latency p50 ${fmt(percentile(lat, 50))} ms, p99 ${fmt(percentile(lat, 99))} ms |`;
}

export async function replicationBench(): Promise<string[]> {
  const rows: string[] = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-replication-"));
  const cluster = await NatsCluster.start(3);
  try {
    const connA = await ReplicationConnection.open({ servers: [cluster.servers[0]] });
    const connB = await ReplicationConnection.open({ servers: [cluster.servers[1]] });
    try {
      const n = 1000;
      rows.push(await commitRun("local only (no replication)", `sdbox:${tmp}/local-only`, undefined, n));
      rows.push(await commitRun("`replicated` (returns after JetStream's ack, stream ×3)", `sdbox:${tmp}/replicated`, replicatedCommitHooks(new Publisher(connA, "bench-replicated")), n));
      rows.push(await commitRun("`replicated` without the pre-commit fencing check", `sdbox:${tmp}/replicated-noprecheck`, replicatedCommitHooks(new Publisher(connA, "bench-noprecheck"), { precheck: false }), n));
      const outbox = new Outbox(new Publisher(connA, "bench-local"), `${tmp}/outbox`);
      let drainSeconds = 0;
      rows.push(await commitRun("`local` (returns after the log and the outbox marker)", `sdbox:${tmp}/local-mode`, outbox.hooks, n, (s) => outbox.attach(s), async () => {
        const tf = performance.now();
        await outbox.flush(120_000);
        drainSeconds = (performance.now() - tf) / 1000;
      }));
      rows.push(`| \`local\` mode: what the outbox still held when the last commit returned, published in | ${fmt(drainSeconds)} s | | drained alongside the commits (every 5 ms at most), up to 256 KiB of log per stream message |`);
      await outbox.close();
      rows.push(await concurrentCommitsRow(connA, `${tmp}/concurrent-one`, 1, 400));
      rows.push(await concurrentCommitsRow(connA, `${tmp}/concurrent-four`, 4, 100));

      // Cross-node change streams.
      const storage = openStorage(`sdbox:${tmp}/changes`, { commitHooks: replicatedCommitHooks(new Publisher(connA, "bench-changes")) });
      const inbox = await storage.openMailbox("INBOX");
      await inbox.transaction().append({ body: body(0) }).commit();
      const started = new Map<bigint, number>();
      const localAt = new Map<bigint, number>();
      const fromStart: number[] = [];
      const fromLocal: number[] = [];
      const local = inbox.changes().subscribe((b) => localAt.set(b.modseq, performance.now()));
      let got = 0;
      const remote = remoteChanges(connB, { storageId: "bench-changes", mailboxGuid: inbox.guid()! }).subscribe((b) => {
        const now = performance.now();
        got++;
        const s = started.get(b.modseq);
        if (s !== undefined) fromStart.push(now - s);
        const l = localAt.get(b.modseq);
        if (l !== undefined) fromLocal.push(now - l);
      });
      await new Promise((r) => setTimeout(r, 300));
      const m = 500;
      for (let i = 1; i <= m; i++) {
        const modseq = inbox.state.logModseq + 1n;
        started.set(modseq, performance.now());
        await inbox.transaction().append({ body: body(i) }).commit();
        await new Promise((r) => setTimeout(r, 2)); // one commit at a time, as an interactive client makes them
      }
      const deadline = Date.now() + 10_000;
      while (got < m && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      local.unsubscribe();
      remote.unsubscribe();
      fromStart.sort((a, b) => a - b);
      fromLocal.sort((a, b) => a - b);
      rows.push(`| cross-node change stream: commit() start on node A → remoteChanges() on node B, ${fromStart.length} commits | | | p50 ${fmt(percentile(fromStart, 50))} ms, p99 ${fmt(percentile(fromStart, 99))} ms |`);
      rows.push(`| cross-node change stream: A's local changes() batch → B's batch, ${fromLocal.length} commits | | | p50 ${fmt(percentile(fromLocal, 50))} ms, p99 ${fmt(percentile(fromLocal, 99))} ms |`);
      await storage.close();

      // Catch-up after 10,000 missed transactions (published through the local-mode outbox, so quickly).
      const k = 10_000;
      const pubOutbox = new Outbox(new Publisher(connA, "bench-catchup"), `${tmp}/outbox-catchup`);
      const primary = openStorage(`mdbox:${tmp}/catchup-primary`, { commitHooks: pubOutbox.hooks });
      await pubOutbox.attach(primary);
      const box = await primary.openMailbox("INBOX");
      for (let i = 0; i < k; i++) {
        const tx = box.transaction();
        if (i % 2 === 0 || i < 10) tx.append({ body: body(i) });
        else tx.flags([{ uid1: 1 + (i % 5), uid2: 1 + (i % 5) }], i % 4 === 1 ? "add" : "remove", ["\\Seen"]);
        await tx.commit();
      }
      await pubOutbox.flush(300_000);
      await pubOutbox.close();
      await primary.close();
      for (const format of ["maildir", "sdbox"]) {
        const replicaStore = openStorage(`${format}:${tmp}/catchup-replica-${format}`);
        const tc = performance.now();
        const replica = await Replica.start(connB, replicaStore, { storageId: "bench-catchup", positionFile: `${tmp}/catchup-position-${format}.json` });
        await replica.caughtUp(300_000);
        const secs = (performance.now() - tc) / 1000;
        const st = replica.status();
        const lag = await replica.lag();
        await replica.stop();
        await replicaStore.close();
        rows.push(`| replica catch-up: ${st.appliedTransactions} transactions missed (${k} commits: half one-message appends, half flag changes; ${st.appliedSeq} stream messages), mdbox → ${format} | ${fmt(secs)} s | ${fmt(st.appliedTransactions / secs)} transactions/s | lag ${lag} at the end |`);
      }
    } finally {
      await connA.close();
      await connB.close();
    }
  } finally {
    await cluster.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return rows;
}
