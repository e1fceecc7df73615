import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

/** Runs an engine-task.ts task as a whole process; returns wall-clock seconds. */
export function timeEngineTask(args: string[]): number {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), "engine-task.js");
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [script, ...args], { encoding: "utf8", maxBuffer: 1 << 28 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`engine-task ${args[0]} exited ${r.status}: ${r.stderr}`);
  return seconds;
}
