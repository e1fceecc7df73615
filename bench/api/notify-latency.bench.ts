import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { openStorage } from "../../src/index.js";
import { fmt } from "../util.js";

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const now = () => performance.timeOrigin + performance.now();

/**
 * Commit-to-notification latency of change streams: in-process (from
 * commit() being called to the subscriber's callback) and across processes
 * (from commit() being called in another process to this process's callback,
 * through the inotify watch on the log).
 */
export async function notifyLatencyBench(): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-bench-"));
  const location = `sdbox:${dir}/mail`;
  const storage = openStorage(location, { fsync: "never" });
  const box = await storage.openMailbox("INBOX");
  await box.transaction().append({ body: "Subject: x\n\ny\n" }).commit();

  const inProcess: number[] = [];
  let started = 0;
  let sub = box.changes().subscribe(() => inProcess.push(now() - started));
  for (let i = 0; i < 1000; i++) {
    started = now();
    await box.transaction().flags([{ uid1: 1, uid2: 1 }], i % 2 ? "remove" : "add", ["\\Seen"]).commit();
    await new Promise((r) => setImmediate(r));
  }
  sub.unsubscribe();

  const arrivals: number[] = [];
  sub = box.changes().subscribe((b) => { if (b.changes.length > 0) arrivals.push(now()); });
  const committer = path.join(path.dirname(fileURLToPath(import.meta.url)), "committer.js");
  const commitsEnded: number[] = [];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [committer, location, "300", "5"], { stdio: ["ignore", "pipe", "inherit"] });
    let buf = "";
    child.stdout.on("data", (d) => {
      buf += d;
      const lines = buf.split("\n");
      buf = lines.pop()!;
      for (const l of lines) commitsEnded.push(Number(l));
    });
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`committer exited ${code}`))));
  });
  await new Promise((r) => setTimeout(r, 200));
  sub.unsubscribe();
  await storage.close();
  fs.rmSync(dir, { recursive: true, force: true });

  const cross = commitsEnded.map((t, i) => arrivals[i] - t).filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const inp = inProcess.sort((a, b) => a - b);
  return [
    `| change stream latency, in-process (commit() called → subscriber), ${inp.length} commits | p50 ${fmt(percentile(inp, 50))} ms | p99 ${fmt(percentile(inp, 99))} ms | |`,
    `| change stream latency, across processes (commit() called in another process → subscriber here, via inotify), ${cross.length} of ${commitsEnded.length} commits | p50 ${fmt(percentile(cross, 50))} ms | p99 ${fmt(percentile(cross, 99))} ms | |`,
  ];
}
