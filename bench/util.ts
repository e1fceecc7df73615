import Benchmark from "benchmark";
import { spawnSync } from "node:child_process";

/** Runs one benchmark.js benchmark and returns mean seconds per operation. */
export function measure(name: string, fn: () => void, options: Benchmark.Options = {}): Promise<{ name: string; meanSeconds: number; rme: number; samples: number }> {
  return new Promise((resolve, reject) => {
    const bench = new Benchmark(name, fn, { minSamples: 5, maxTime: 3, ...options });
    bench.on("complete", () => {
      if (bench.error) reject(bench.error);
      else resolve({ name, meanSeconds: bench.stats.mean, rme: bench.stats.rme, samples: bench.stats.sample.length });
    });
    bench.on("error", () => reject(bench.error));
    bench.run({ async: false });
  });
}

/** Wall-clock seconds of a command, best of `runs`. */
export function timeCommand(cmd: string, args: string[], runs = 5): number {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { stdio: ["ignore", "ignore", "inherit"] });
    const t = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}`);
    best = Math.min(best, t);
  }
  return best;
}

/** The middle value (the upper one of an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export function fmt(n: number, digits = 3): string {
  return n >= 100 ? n.toFixed(0) : n.toPrecision(digits);
}

/** "2.1× faster than Dovecot" or "13× slower than Dovecot", from both sides' seconds. */
export function versusDovecot(engineSeconds: number, dovecotSeconds: number): string {
  return engineSeconds <= dovecotSeconds
    ? `${fmt(dovecotSeconds / engineSeconds)}× faster than Dovecot`
    : `${fmt(engineSeconds / dovecotSeconds)}× slower than Dovecot`;
}
