// A/B of replica catch-up between two built checkouts (each with its dist/):
//   node bench/replication/ab/catchup.mjs <pairs> <formats,comma> <repo A> <repo B>
// One 3-node cluster; 10,000 missed transactions published once through B's local-mode outbox (as the catch-up of
// bench/replication/replication.bench.ts); then catch-ups alternated A/B, B/A, each into a fresh store, in a child process.
// One JSON line per catch-up.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
const [pairs, formats, A, B] = [Number(process.argv[2]), (process.argv[3] ?? "maildir").split(","), process.argv[4], process.argv[5]];
if (process.argv[2] === "child") {
  const [, , , repo, servers, format, dir] = process.argv;
  const { openStorage } = await import(`${repo}/dist/src/index.js`);
  const { Replica, ReplicationConnection } = await import(`${repo}/dist/src/replication/index.js`);
  const conn = await ReplicationConnection.open({ servers: servers.split(",") });
  const store = openStorage(`${format}:${dir}/store`);
  const t = performance.now();
  const replica = await Replica.start(conn, store, { storageId: "bench-catchup", positionFile: `${dir}/position.json` });
  await replica.caughtUp(600_000);
  const secs = (performance.now() - t) / 1000;
  const st = replica.status();
  const lag = await replica.lag();
  await replica.stop(); await store.close(); await conn.close();
  console.log(JSON.stringify({ secs, applied: st.appliedTransactions, seq: st.appliedSeq, lag, rate: st.appliedTransactions / secs }));
  process.exit(0);
}
const { openStorage } = await import(`${B}/dist/src/index.js`);
const { Outbox, Publisher, ReplicationConnection } = await import(`${B}/dist/src/replication/index.js`);
const { NatsCluster } = await import(`${B}/dist/bench/replication/nats-cluster.js`);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ab-catchup-"));
const cluster = await NatsCluster.start(3);
const body = (i) => `From: a@example.com\nSubject: bench ${i}\n\nmessage ${i}\n`;
try {
  const conn = await ReplicationConnection.open({ servers: [cluster.servers[0]] });
  const outbox = new Outbox(new Publisher(conn, "bench-catchup"), `${tmp}/outbox`);
  const primary = openStorage(`mdbox:${tmp}/primary`, { commitHooks: outbox.hooks });
  await outbox.attach(primary);
  const box = await primary.openMailbox("INBOX");
  for (let i = 0; i < 10_000; i++) {
    const tx = box.transaction();
    if (i % 2 === 0 || i < 10) tx.append({ body: body(i) });
    else tx.flags([{ uid1: 1 + (i % 5), uid2: 1 + (i % 5) }], i % 4 === 1 ? "add" : "remove", ["\\Seen"]);
    await tx.commit();
  }
  await outbox.flush(300_000); await outbox.close(); await primary.close(); await conn.close();
  let n = 0;
  for (let p = 1; p <= pairs; p++) {
    for (const format of formats) {
      const order = p % 2 ? [["A", A], ["B", B]] : [["B", B], ["A", A]];
      for (const [label, repo] of order) {
        const dir = `${tmp}/r${n++}`; fs.mkdirSync(dir);
        const load = fs.readFileSync("/proc/loadavg", "utf8").split(" ")[0];
        const out = execFileSync("node", [process.argv[1], "child", repo, cluster.servers[1], format, dir], { encoding: "utf8" }).trim().split("\n").pop();
        console.log(JSON.stringify({ pair: p, label, format, load, ...JSON.parse(out) }));
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  }
} finally { await cluster.stop(); fs.rmSync(tmp, { recursive: true, force: true }); }
