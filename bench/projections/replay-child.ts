/**
 * One measurement of the replay benchmark, in a process of its own:
 * `node replay-child.js <decode|decode-reused|replay> <prefix> <calls> [dist]`
 * runs the operation `calls` times on the log of `prefix` and prints, as
 * JSON, each call's wall and CPU (user + system) milliseconds. `dist`: the
 * dist/ directory of another checkout to take the code from (an A/B run
 * against a base build, replay-ab.ts); this one's by default.
 *
 * Why a process of its own: a process that has just written the log has
 * also decoded what it wrote (the append reads its own transactions back)
 * and kept those transactions alive for a while, so V8's allocation-site
 * pretenuring marked the decoder's allocation sites "tenure" for good. Every
 * transaction object a later decode made in that process went straight to
 * the old generation: the allocating decode measured 1.3-1.9 s there and
 * 0.2 s in a fresh process (0.20 s in the same process under
 * --no-allocation-site-pretenuring). A fresh process that only reads is what
 * a replay costs where it happens (opening a mailbox).
 */
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { loadState as LoadState } from "../../src/index-io/load-state.js";
import type { streamLog as StreamLog } from "../../src/log/view.js";

const [op, prefix, callsArg, distArg] = process.argv.slice(2);
const dist = distArg ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const from = (file: string): string => pathToFileURL(path.join(dist, file)).href;
const { loadState } = (await import(from("src/index-io/load-state.js"))) as { loadState: typeof LoadState };
const { streamLog } = (await import(from("src/log/view.js"))) as { streamLog: typeof StreamLog };
const ops: Record<string, () => void> = {
  // An object per transaction, as readLog hands them out.
  "decode": () => void streamLog(prefix, undefined, { onTransaction: () => undefined }),
  // As the replay itself decodes: one transaction object, overwritten.
  "decode-reused": () => void streamLog(prefix, undefined, { onTransaction: () => undefined, reuse: true }),
  "replay": () => void loadState(prefix),
};
const run = ops[op];
const calls = Number(callsArg ?? 2);
if (run === undefined || prefix === undefined || !Number.isInteger(calls) || calls < 1) {
  throw new Error(`usage: replay-child.js <${Object.keys(ops).join("|")}> <prefix> [calls] [dist]`);
}
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const wallMs: number[] = [];
const cpuMs: number[] = [];
for (let i = 0; i < calls; i++) {
  gc();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  run();
  wallMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  const cpu = process.cpuUsage(cpu0);
  cpuMs.push((cpu.user + cpu.system) / 1e3);
}
process.stdout.write(JSON.stringify({ wallMs, cpuMs }) + "\n");
