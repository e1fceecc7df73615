// One run of bench/replication/concurrent.bench.ts's rows with more commits (4 committers x 300, then 1 x 300 replicated
// appends), from a built checkout's dist/, on its own 3-node cluster:  node bench/replication/ab/concurrent.mjs <repo>
// (alternate two checkouts' runs for an A/B).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
const repo = process.argv[2];
const { concurrentCommitsRow } = await import(`${repo}/dist/bench/replication/concurrent.bench.js`);
const { NatsCluster } = await import(`${repo}/dist/bench/replication/nats-cluster.js`);
const { ReplicationConnection } = await import(`${repo}/dist/src/replication/index.js`);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ab-concurrent-"));
const cluster = await NatsCluster.start(3);
try {
  const conn = await ReplicationConnection.open({ servers: [cluster.servers[0]] });
  try {
    console.log(await concurrentCommitsRow(conn, `${tmp}/four`, 4, 300));
    console.log(await concurrentCommitsRow(conn, `${tmp}/one`, 1, 300));
  } finally { await conn.close(); }
} finally { await cluster.stop(); fs.rmSync(tmp, { recursive: true, force: true }); }
