/**
 * A test worker script (test/workers/*.mjs) as a child process: its stdout
 * lines are its progress ("ready", "ok N", …); `until` waits for a
 * condition on them, `send` writes a line to its stdin, `kill` SIGKILLs it
 * by PID and waits for its exit. No sleeps: tests act on these signals.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";

export interface WorkerProgress {
  ready: boolean;
  /** N of every "ok N" line with a number. */
  acked: readonly number[];
  /** Every stdout line, in order. */
  lines: readonly string[];
}

export class WorkerProcess {
  readonly acked: number[] = [];
  readonly lines: string[] = [];
  private ready = false;
  private stderr = "";
  private exitCode: number | null | undefined;
  private readonly checks = new Set<() => void>();
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly exited: Promise<void>;

  constructor(script: string, options: object) {
    this.child = spawn(process.execPath, [script, JSON.stringify(options)]);
    let partial = "";
    this.child.stdout.setEncoding("utf8").on("data", (d: string) => {
      const lines = (partial + d).split("\n");
      partial = lines.pop()!;
      for (const line of lines) {
        this.lines.push(line);
        if (line === "ready") this.ready = true;
        else if (/^ok \d+$/.test(line)) this.acked.push(Number(line.slice(3)));
      }
      for (const check of [...this.checks]) check();
    });
    this.child.stderr.setEncoding("utf8").on("data", (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => {
      this.exitCode = code;
      for (const check of [...this.checks]) check();
      resolve();
    }));
  }

  /** Resolves once `cond` holds. @throws when the worker exits before. */
  until(what: string, cond: (w: WorkerProgress) => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (cond({ ready: this.ready, acked: this.acked, lines: this.lines })) {
          this.checks.delete(check);
          resolve();
        } else if (this.exitCode !== undefined) {
          this.checks.delete(check);
          reject(new Error(`worker exited (${this.exitCode}) before ${what}; ${this.acked.length} acknowledged; last line ${this.lines[this.lines.length - 1]}; stderr: ${this.stderr}`));
        }
      };
      this.checks.add(check);
      check();
    });
  }

  /** Writes `line` to the worker's stdin. */
  send(line: string): void {
    this.child.stdin.write(line + "\n");
  }

  async kill(): Promise<void> {
    if (this.exitCode === undefined) process.kill(this.child.pid!, "SIGKILL");
    await this.exited;
  }
}
