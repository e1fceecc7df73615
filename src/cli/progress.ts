import { createRequire } from "node:module";
import type CliProgress from "cli-progress";
import type { CliIo } from "./io.js";

// Loaded only when a bar is shown: every CLI start would pay for it otherwise.
const require = createRequire(import.meta.url);

/**
 * A progress bar on a terminal (stderr), nothing otherwise: long work
 * (replaying big logs, imports, purges) shows progress to a person and
 * stays quiet in scripts and pipes.
 */
export function progressBar(io: CliIo, label: string): { update(done: number, total: number): void; stop(): void } {
  if (!io.isTTY) return { update: () => undefined, stop: () => undefined };
  const cliProgress = require("cli-progress") as typeof CliProgress;
  const bar = new cliProgress.SingleBar({ format: `${label} [{bar}] {percentage}% {value}/{total}`, stream: process.stderr, clearOnComplete: true }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.setTotal(total);
      bar.update(done);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
