import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as readline from "node:readline";
import { distModule } from "../lib/paths.js";
import type { ChildRequest } from "./child.js";
import type { Classified, Outcome } from "./targets.js";

/** The child's heap limit: an input that makes a reader allocate without bound crashes it. */
const HEAP_MB = 512;

type Pending = { id: number; resolve: (c: Classified) => void; timer: NodeJS.Timeout; t0: number };

/**
 * The fuzz subprocess (child.ts) seen from the campaign: ask() sends one
 * request and resolves with its outcome; no answer within the time limit is
 * a "hang" and a dead process a "crash" (a new one is started for the next
 * request either way). One request at a time.
 */
export class FuzzChild {
  private child!: ChildProcessWithoutNullStreams;
  private pending: Pending | undefined;
  private stderr = "";
  private nextId = 1;
  private closed = false;

  constructor(private readonly timeoutMs: number) {
    this.start();
  }

  private start(): void {
    this.stderr = "";
    this.child = spawn(process.execPath, [`--max-old-space-size=${HEAP_MB}`, distModule("campaign/fuzz/child.js")], { stdio: ["pipe", "pipe", "pipe"] });
    const child = this.child;
    child.stderr.on("data", (d) => (this.stderr = (this.stderr + d).slice(-4000)));
    child.stdin.on("error", () => undefined); // a dead child: its exit is reported below
    readline.createInterface({ input: child.stdout }).on("line", (line) => {
      const answer = JSON.parse(line) as { id: number; outcome: Outcome; detail?: string };
      if (this.pending?.id === answer.id) this.settle({ outcome: answer.outcome, ms: performance.now() - this.pending.t0, ...(answer.detail !== undefined ? { detail: answer.detail } : {}) });
    });
    child.once("exit", (code, signal) => {
      if (child !== this.child || this.closed) return;
      this.settle({ outcome: "crash", detail: `exit ${code ?? signal}: ${this.stderr.trim().split("\n").slice(-3).join(" | ")}`, ms: 0 });
      this.start();
    });
  }

  private settle(c: Classified): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    p.resolve(c);
  }

  /** Runs one request (without its id) in the child. */
  ask(req: ChildRequest extends infer R ? (R extends unknown ? Omit<R, "id"> : never) : never): Promise<Classified> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const old = this.child;
        this.settle({ outcome: "hang", detail: `no answer within ${this.timeoutMs} ms`, ms: this.timeoutMs });
        this.start(); // first: the old one's exit then concerns no request
        old.kill("SIGKILL");
      }, this.timeoutMs);
      this.pending = { id, resolve, timer, t0: performance.now() };
      this.child.stdin.write(JSON.stringify({ ...req, id }) + "\n");
    });
  }

  close(): void {
    this.closed = true;
    this.child.kill("SIGKILL");
  }
}
