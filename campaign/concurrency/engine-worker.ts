import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { ORACLE_GID, ORACLE_UID } from "../../test/helpers/dovecot-oracle.js";
import { distModule } from "../lib/paths.js";
import type { WorkerReport } from "./ops.js";
import type { WorkerArgs } from "./worker.js";

/**
 * A running concurrency worker (worker.ts, from dist/) as the mail uid, like
 * doveadm: wait for ready(), pace it with send("tick N") / send("end"),
 * then collect its report().
 */
export class EngineWorker {
  readonly child: ChildProcessWithoutNullStreams;
  private out = "";
  private err = "";
  private readonly waiters: Array<() => void> = [];
  readonly exited: Promise<number | null>;

  constructor(readonly args: WorkerArgs, cwd: string) {
    this.child = spawn(process.execPath, [distModule("campaign/concurrency/worker.js"), JSON.stringify(args)], {
      uid: ORACLE_UID,
      gid: ORACLE_GID,
      cwd,
      env: { PATH: process.env.PATH, HOME: cwd },
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.child.stdout.on("data", (d) => {
      this.out += d;
      for (const w of this.waiters.splice(0)) w();
    });
    this.child.stderr.on("data", (d) => (this.err += d));
    // A worker that died does not read its stdin; its report says why.
    this.child.stdin.on("error", () => undefined);
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code) => {
        resolve(code);
        for (const w of this.waiters.splice(0)) w();
      }),
    );
  }

  get name(): string {
    return this.args.name;
  }

  /** Resolves once the worker printed "ready". @throws when it exited first. */
  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.out.includes("ready\n")) resolve();
        else if (this.child.exitCode !== null) reject(new Error(`engine ${this.name} exited (${this.child.exitCode}) before ready: ${this.err}`));
        else this.waiters.push(check);
      };
      check();
    });
  }

  send(line: string): void {
    if (this.child.exitCode === null && this.child.stdin.writable) this.child.stdin.write(line + "\n");
  }

  /** The worker's report once it exited. @throws when it failed (the message has its error and stderr). */
  async report(): Promise<WorkerReport> {
    const code = await this.exited;
    const last = this.out.trim().split("\n").pop() ?? "";
    let report: WorkerReport;
    try {
      report = JSON.parse(last) as WorkerReport;
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      throw new Error(`engine ${this.name} exited ${code} without a report (${err.message}): stdout ${this.out.slice(-500)} stderr ${this.err.slice(-2000)}`);
    }
    if (report.error !== undefined || code !== 0) {
      throw new Error(`engine ${this.name} failed after ${report.done.length} acknowledged operations (exit ${code}): ${report.error ?? ""} ${this.err.slice(-2000)}`);
    }
    return report;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}
