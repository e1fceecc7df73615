import { decodeBench } from "./log/decode.bench.js";
import { appendBench } from "./log/append.bench.js";
import { commitBench, indexMapBench, memoryBench, openBench, replayBench } from "./projections/index-map.bench.js";
import { notifyLatencyBench } from "./api/notify-latency.bench.js";
import { syncPathBench } from "./api/sync-path.bench.js";
import { mdboxWorkloadBench } from "./mdbox/workload.bench.js";
import { maildirSyncBench } from "./maildir/sync.bench.js";
import { mboxConvertBench, mboxToMdboxBench } from "./mbox/convert.bench.js";
import { mboxExpungeBench } from "./mbox/expunge.bench.js";

/**
 * `npm run bench [-- NAME…]`: runs the named benchmarks (all by default) and
 * prints markdown table rows for bench/RESULTS.md.
 */
const benches: Record<string, () => Promise<string[]>> = {
  "log-decode": () => decodeBench(),
  "log-append": () => appendBench(),
  "index-map": () => indexMapBench(),
  "index-map-memory": async () => [await memoryBench()],
  "index-map-open": async () => [await openBench()],
  "index-map-replay": async () => [await replayBench()],
  "index-map-commit": () => commitBench(),
  "notify-latency": () => notifyLatencyBench(),
  "sync-path": () => syncPathBench(),
  "mdbox-workload": () => mdboxWorkloadBench(),
  "maildir-sync": () => maildirSyncBench(),
  "mbox-expunge": () => mboxExpungeBench(),
  "mbox-to-maildir": () => mboxConvertBench("maildir"),
  "mbox-to-mdbox": () => mboxToMdboxBench(),
};

const wanted = process.argv.slice(2);
// index-map runs the index-map-* parts; by default each runs once.
const names = wanted.length > 0 ? wanted : Object.keys(benches).filter((n) => !n.startsWith("index-map-"));
console.log("| benchmark | time | throughput | comparison |");
console.log("|---|---|---|---|");
for (const name of names) {
  const bench = benches[name];
  if (!bench) throw new Error(`unknown benchmark ${name}; known: ${Object.keys(benches).join(", ")}`);
  for (const row of await bench()) console.log(row);
}
