import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { openStorage, type Mailbox } from "../../src/index.js";
import { fmt } from "../util.js";

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const now = () => performance.timeOrigin + performance.now();

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Mean ms of `n` single-flag commits. */
async function timeCommits(box: Mailbox, n: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await box.transaction().flags([{ uid1: 1, uid2: 1 }], i % 2 ? "remove" : "add", ["\\Seen"]).commit();
  return (performance.now() - t0) / n;
}

/**
 * What 1,000 change-stream subscribers cost a commit: single-flag commit
 * latency with them against none, in alternating rounds (on a shared
 * machine alternating spreads the noise over both), medians of the rounds.
 * test/unit/api/subscribers.test.ts checks, by counting, why it stays
 * close to 1×: publishing runs no subscriber code, the fan-out's work per
 * batch is linear in the subscribers, and one log watch serves them all.
 */
async function subscriberCostRow(box: Mailbox): Promise<string> {
  const subscribers = 1000;
  const rounds = 5;
  const commits = 100;
  await timeCommits(box, 50); // warm up
  const alone: number[] = [];
  const crowded: number[] = [];
  let received = 0;
  for (let round = 0; round < rounds; round++) {
    alone.push(await timeCommits(box, commits));
    const subs = Array.from({ length: subscribers }, () => box.changes().subscribe(() => void received++));
    crowded.push(await timeCommits(box, commits));
    await new Promise((r) => setImmediate(r));
    for (const s of subs) s.unsubscribe();
  }
  if (received !== rounds * commits * subscribers) throw new Error(`subscribers received ${received} batches, expected ${rounds * commits * subscribers}`);
  const [a, c] = [median(alone), median(crowded)];
  return `| single-flag commit with ${subscribers} change-stream subscribers vs none (${rounds} alternating rounds of ${commits} commits, medians) | ${fmt(c)} ms vs ${fmt(a)} ms | | ${fmt(c / a, 2)}× |`;
}

/**
 * Commit-to-notification latency of change streams: in-process (from
 * commit() being called to the subscriber's callback) and across processes
 * (from commit() being called in another process to this process's callback,
 * through the inotify watch on the log); then what 1,000 subscribers cost a
 * commit (subscriberCostRow).
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
  const subscriberCost = await subscriberCostRow(box);

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
    subscriberCost,
  ];
}
