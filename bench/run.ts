import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { decodeBench } from "./log/decode.bench.js";
import { appendBench } from "./log/append.bench.js";
import { commitBench, memoryBench, openBench, replayBench } from "./projections/index-map.bench.js";
import { notifyLatencyBench } from "./api/notify-latency.bench.js";
import { syncPathBench } from "./api/sync-path.bench.js";
import { vsDovecotBench } from "./side-by-side/vs-dovecot.bench.js";
import { profileStepsBench } from "./side-by-side/profile-steps.bench.js";
import { profileWholeBench } from "./side-by-side/profile-whole.bench.js";
import { maildirSyncBench } from "./maildir/sync.bench.js";
import { mboxConvertBench, mboxToMdboxBench } from "./mbox/convert.bench.js";
import { mboxExpungeBench } from "./mbox/expunge.bench.js";
import { replicationBench } from "./replication/replication.bench.js";
import { concurrentCommitsBench } from "./replication/concurrent.bench.js";
import { noopStartupBench } from "./startup/noop.bench.js";

/**
 * `npm run bench [-- NAME…] [--messages N | --sizes A,B…]`: runs the named
 * benchmarks (all by default) and prints markdown table rows for
 * bench/RESULTS.md. `vs-dovecot` runs at 20,000 messages and at
 * `--messages N` (default 100,000), or at exactly `--sizes`; so does
 * `profile-steps` (its embedded steps under the sampling profiler) and
 * `profile-whole` (its steps as whole CLI processes under --cpu-prof).
 * `--repeat N`: whole-process runs per step and tool in vs-dovecot (default 3).
 * `noop-startup [--vs-bin PATH]`: also times another checkout's bin/mailstore.js.
 */
const { names: wanted, sizes, vsBin, repeat } = parseArgs(process.argv.slice(2));
const benches: Record<string, () => Promise<string[]>> = {
  "log-decode": () => decodeBench(),
  "log-append": () => appendBench(),
  "index-map": () => Promise.resolve([]), // expanded into its parts below
  "index-map-memory": async () => [await memoryBench()],
  "index-map-open": async () => [await openBench()],
  "index-map-replay": async () => [await replayBench()],
  "index-map-commit": () => commitBench(),
  "notify-latency": () => notifyLatencyBench(),
  "sync-path": () => syncPathBench(),
  "vs-dovecot": () => vsDovecotBench({ sizes, repeat }),
  "mdbox-workload": () => vsDovecotBench({ sizes: [20_000], repeat }),
  "profile-steps": () => profileStepsBench({ sizes }),
  "profile-whole": () => profileWholeBench({ sizes }),
  "maildir-sync": () => maildirSyncBench(),
  "mbox-expunge": () => mboxExpungeBench(),
  "mbox-to-maildir": () => mboxConvertBench("maildir"),
  "mbox-to-mdbox": () => mboxToMdboxBench(),
  replication: () => replicationBench(),
  "replication-concurrent": () => concurrentCommitsBench(),
  "noop-startup": () => Promise.resolve(noopStartupBench({ otherBin: vsBin })),
};

const INDEX_MAP_PARTS = ["index-map-memory", "index-map-open", "index-map-replay", "index-map-commit"];
// By default every benchmark once (mdbox-workload is vs-dovecot at 20k; profile-steps and
// profile-whole are diagnostics, run when named); index-map is its four parts.
const names = (wanted.length > 0 ? wanted : Object.keys(benches).filter((n) => !n.startsWith("index-map-") && n !== "mdbox-workload" && !n.startsWith("profile-"))).flatMap((n) =>
  n === "index-map" ? INDEX_MAP_PARTS : [n],
);
for (const name of names) {
  if (!benches[name]) throw new Error(`unknown benchmark ${name}; known: ${Object.keys(benches).join(", ")}`);
}
if (process.env.MAILSTORE_BENCH_CHILD === undefined) {
  console.log("| benchmark | time | throughput | comparison |");
  console.log("|---|---|---|---|");
}
if (names.length === 1) {
  for (const row of await benches[names[0]]()) console.log(row);
} else {
  // Each in a fresh process: what one leaves on the heap slowed the next one's garbage
  // collection (a replay measured 2.7× slower after the memory benchmark).
  for (const name of names) {
    const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), name, "--sizes", sizes.join(","), ...(vsBin === undefined ? [] : ["--vs-bin", vsBin]), ...(repeat === undefined ? [] : ["--repeat", String(repeat)])], {
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, MAILSTORE_BENCH_CHILD: "1" },
    });
    if (child.status !== 0) throw new Error(`benchmark ${name} failed (exit ${child.status ?? child.signal})`);
  }
}

function parseArgs(argv: readonly string[]): { names: string[]; sizes: number[]; vsBin?: string; repeat?: number } {
  const names: string[] = [];
  let vsBin: string | undefined;
  let repeat: number | undefined;
  let sizes = [20_000, 100_000];
  const count = (v: string | undefined, flag: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 2) throw new Error(`${flag} wants a whole number of messages ≥ 2, not ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--messages") sizes = [...new Set([20_000, count(argv[++i], a)])].sort((x, y) => x - y);
    else if (a === "--sizes") sizes = (argv[++i] ?? "").split(",").map((v) => count(v, a));
    else if (a === "--vs-bin") vsBin = argv[++i];
    else if (a === "--repeat") {
      repeat = Number(argv[++i]);
      if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat wants a whole number of runs ≥ 1, not ${argv[i]}`);
    }
    else if (a.startsWith("--")) throw new Error(`unknown option ${a}`);
    else names.push(a);
  }
  return { names, sizes, vsBin, repeat };
}
