/**
 * Crash tests' one move: start a worker script, wait for its "ready" line,
 * let it work, then SIGKILL it. The worker prints "ready" once set up.
 */
import { spawn, type ChildProcessByStdio } from "node:child_process";
import type { Readable } from "node:stream";
import * as fs from "node:fs";

/** A worker that printed "ready". */
export interface ReadyWorker {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  /** Resolves when the worker has exited. */
  readonly exited: Promise<void>;
  /** What it wrote to stderr so far. */
  stderr(): string;
}

/**
 * Starts `node script args…` and waits for its "ready" line.
 * @throws when the worker exits before it is ready.
 */
export async function startReadyWorker(script: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<ReadyWorker> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ["ignore", "pipe", "pipe"], ...(env ? { env } : {}) });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d) => String(d).includes("ready") && resolve());
    child.once("exit", (code) => reject(new Error(`worker exited early (${code}): ${stderr}`)));
  });
  return { child, exited, stderr: () => stderr };
}

export interface KillOptions {
  /** How long the worker runs after "ready" (after `whenExists` appears, when given). */
  killAfterMs: number;
  /** Wait (up to 3 s) for this file to exist first: kills aimed at a moment, e.g. a lock held. */
  whenExists?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs `node script args…` and kills it with SIGKILL as `opts` says.
 * @returns what the worker wrote to stderr before it died ("" when it did not fail).
 * @throws when the worker exits before it is ready.
 */
export async function runAndKill(script: string, args: readonly string[], opts: KillOptions): Promise<string> {
  const { child, exited, stderr } = await startReadyWorker(script, args, opts.env);
  if (opts.whenExists) {
    const deadline = Date.now() + 3000;
    while (!fs.existsSync(opts.whenExists) && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, opts.killAfterMs));
  child.kill("SIGKILL");
  await exited;
  return stderr();
}
