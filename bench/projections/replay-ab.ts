/**
 * A/B of the replay benchmark's operations against another checkout's build:
 * `node --expose-gc dist/bench/projections/replay-ab.js <base checkout> [pairs] [op…]`
 * writes the benchmark's 1M-record log once, then runs each op (replay,
 * decode, decode-reused; replay by default) in alternated pairs of fresh
 * processes, base and this checkout, the order flipped every pair, and
 * prints the medians of each side's second call and of the pair ratios
 * (this / base), wall and CPU, and of the first calls' wall ratio.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { median } from "../util.js";
import { replayChild, writeReplayLog } from "./index-map.bench.js";

const [baseCheckout, pairsArg, ...opArgs] = process.argv.slice(2);
const pairs = Number(pairsArg ?? 15);
if (baseCheckout === undefined || !Number.isInteger(pairs) || pairs < 1) throw new Error("usage: replay-ab.js <base checkout> [pairs] [replay|decode|decode-reused…]");
const baseDist = path.join(path.resolve(baseCheckout), "dist");
const ownDist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-replay-ab-"));
const prefix = path.join(dir, "dovecot.index");
try {
  await writeReplayLog(prefix);
  for (const op of opArgs.length > 0 ? opArgs : ["replay"]) {
    const sides = { base: { wall: [] as number[], cpu: [] as number[] }, own: { wall: [] as number[], cpu: [] as number[] } };
    const ratios = { wall: [] as number[], cpu: [] as number[], first: [] as number[] };
    for (let i = 0; i < pairs; i++) {
      const order: Array<"base" | "own"> = i % 2 === 0 ? ["base", "own"] : ["own", "base"];
      const got: Record<string, { wallMs: number[]; cpuMs: number[] }> = {};
      for (const side of order) got[side] = replayChild(op, prefix, side === "base" ? baseDist : ownDist);
      for (const side of order) {
        sides[side].wall.push(got[side].wallMs[1]);
        sides[side].cpu.push(got[side].cpuMs[1]);
      }
      ratios.wall.push(got.own.wallMs[1] / got.base.wallMs[1]);
      ratios.cpu.push(got.own.cpuMs[1] / got.base.cpuMs[1]);
      ratios.first.push(got.own.wallMs[0] / got.base.wallMs[0]);
    }
    const ms = (xs: number[]): string => median(xs).toFixed(0);
    console.log(`${op}, ${pairs} pairs: base ${ms(sides.base.wall)} ms wall, ${ms(sides.base.cpu)} ms CPU; this ${ms(sides.own.wall)} ms wall, ${ms(sides.own.cpu)} ms CPU; ratio this/base wall ${median(ratios.wall).toFixed(3)}, CPU ${median(ratios.cpu).toFixed(3)}, first call ${median(ratios.first).toFixed(3)}`);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
