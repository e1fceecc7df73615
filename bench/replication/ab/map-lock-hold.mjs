// node bench/replication/ab/map-lock-hold.mjs <repo>, from a built checkout's dist/: 4 committers x 200 replicated one-message appends on distinct mdbox mailboxes of one store;
// how long each save holds mdbox's map lock (from the commit's locks taken to the map lock let go before the publish).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
const repo = process.argv[2];
const { openStorage } = await import(`${repo}/dist/src/index.js`);
const { NatsCluster } = await import(`${repo}/dist/bench/replication/nats-cluster.js`);
const { Publisher, ReplicationConnection, replicatedCommitHooks } = await import(`${repo}/dist/src/replication/index.js`);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ab-hold-"));
const cluster = await NatsCluster.start(3);
const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.floor(p / 100 * xs.length))];
try {
  const conn = await ReplicationConnection.open({ servers: [cluster.servers[0]] });
  const storage = openStorage(`mdbox:${tmp}/s`, { commitHooks: replicatedCommitHooks(new Publisher(conn, "hold")) });
  const holds = [];
  const boxes = [];
  for (let c = 0; c < 4; c++) {
    await storage.createMailbox(`Box${c}`);
    const box = await storage.openMailbox(`Box${c}`);
    for (let i = 0; i < 5; i++) await box.transaction().append({ body: `Subject: ${i}\n\nx\n` }).commit();
    const b = box.backend; const withLocks = b.withCommitLocks.bind(b); const release = b.releaseStorageLocks.bind(b);
    let t0;
    b.withCommitLocks = (fn, intent) => withLocks(async (...a) => { t0 = performance.now(); return fn(...a); }, intent);
    b.releaseStorageLocks = () => { if (t0 !== undefined) holds.push(performance.now() - t0); t0 = undefined; return release(); };
    boxes.push(box);
  }
  const t = performance.now();
  await Promise.all(boxes.map(async (box) => { for (let i = 0; i < 200; i++) await box.transaction().append({ body: `Subject: ${i}\n\nx\n` }).commit(); }));
  const secs = (performance.now() - t) / 1000;
  holds.sort((a, b) => a - b);
  console.log(JSON.stringify({ repo, commitsPerSec: +(800 / secs).toFixed(1), holds: holds.length, holdP50: +pct(holds, 50).toFixed(2), holdP90: +pct(holds, 90).toFixed(2), load: fs.readFileSync("/proc/loadavg", "utf8").split(" ")[0] }));
  await storage.close(); await conn.close();
} finally { await cluster.stop(); fs.rmSync(tmp, { recursive: true, force: true }); }
