/**
 * Issue 14: N committers at once, each on its own mdbox mailbox of one
 * store, in `replicated` mode (each commit returns after JetStream's ack).
 * A save takes mdbox's storage-wide map lock; a commit that held it across
 * its JetStream round trip made the committers of every mailbox take turns
 * on that round trip. Throughput, latency and CPU time per commit.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openStorage } from "../../src/index.js";
import { Publisher, ReplicationConnection, replicatedCommitHooks } from "../../src/replication/index.js";
import { fmt } from "../util.js";
import { NatsCluster } from "./nats-cluster.js";

const body = (i: number) => `From: a@example.com\nSubject: bench ${i}\n\nmessage ${i}\n`;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** `committers` mailboxes of a new mdbox store under `dir`, each with `perCommitter` one-message appends, all at once. @returns a RESULTS.md row. */
export async function concurrentCommitsRow(conn: ReplicationConnection, dir: string, committers: number, perCommitter: number, { precheck = true } = {}): Promise<string> {
  const storage = openStorage(`mdbox:${dir}`, { commitHooks: replicatedCommitHooks(new Publisher(conn, `bench-concurrent-${committers}-${path.basename(dir)}`), { precheck }) });
  const boxes = [];
  for (let c = 0; c < committers; c++) {
    await storage.createMailbox(`Box${c}`);
    const box = await storage.openMailbox(`Box${c}`);
    for (let i = 0; i < 5; i++) await box.transaction().append({ body: body(i) }).commit(); // warm-up: each subject looked up once
    boxes.push(box);
  }
  const lat: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(boxes.map(async (box) => {
    for (let i = 0; i < perCommitter; i++) {
      const s = performance.now();
      await box.transaction().append({ body: body(i) }).commit();
      lat.push(performance.now() - s);
    }
  }));
  const total = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await storage.close();
  const n = committers * perCommitter;
  lat.sort((a, b) => a - b);
  const cpuMsPerCommit = (cpu.user + cpu.system) / 1000 / n;
  return `| commit, \`replicated\`${precheck ? "" : " without the pre-commit fencing check"}, ${committers} committer${committers > 1 ? "s" : ""} at once on distinct mdbox mailboxes: ${committers} × ${perCommitter} one-message appends | ${fmt(total)} s | ${fmt(n / total)} commits/s | latency p50 ${fmt(percentile(lat, 50))} ms, p99 ${fmt(percentile(lat, 99))} ms; CPU ${fmt(cpuMsPerCommit)} ms per commit |`;
}

/** `replication-concurrent`: its own 3-node cluster; 1 and 4 committers, and 4 without the fencing check (a round trip made under the map lock: see RESULTS.md). */
export async function concurrentCommitsBench(): Promise<string[]> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-concurrent-"));
  const cluster = await NatsCluster.start(3);
  try {
    const conn = await ReplicationConnection.open({ servers: [cluster.servers[0]] });
    try {
      return [
        await concurrentCommitsRow(conn, `${tmp}/one`, 1, 400),
        await concurrentCommitsRow(conn, `${tmp}/four`, 4, 100),
        await concurrentCommitsRow(conn, `${tmp}/four-noprecheck`, 4, 100, { precheck: false }),
      ];
    } finally {
      await conn.close();
    }
  } finally {
    await cluster.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
