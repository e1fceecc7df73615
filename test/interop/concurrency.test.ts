/**
 * Two engine processes and doveadm changing the same mailbox at the same time,
 * in each format: random flag/keyword changes (single UIDs and ranges, add and
 * remove) and saves. Each writer owns its flags (engine A: \Flagged and $A0-2,
 * engine B: \Answered and $B0-2, doveadm: \Draft and $D0-2), so the final
 * state is known: for every (uid, flag), the last acknowledged change of its
 * owner. Afterwards both the engine and `doveadm fetch` must show exactly
 * that, every acknowledged save exactly once, doveadm must have logged no
 * problem, and dovecot.index.log must not have been recreated (its file_seq
 * may only grow by a chained rotation).
 *
 * The engines run test/workers/concurrency-worker.mjs (the public API from
 * dist/, as the mail uid like doveadm). Pacing is by messages, not sleeps:
 * every BURST doveadm operations, the test allows each worker BURST more
 * operations, which the two run back to back against each other while
 * doveadm goes on, so all three writers contend during the whole run.
 *
 * Seed: CONCURRENCY_SEED=<n> replays one run's operations (every failure
 * message names it; the interleaving is up to the scheduler); CONCURRENCY_OPS
 * sets the operations per writer (default 100). With KEEP_ORACLE=1 the
 * mailbox stays, with every writer's acknowledged operations in
 * <oracle dir>/concurrency-ops.json.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, expect, it } from "vitest";
import { flagNames, messageCount, openStorage, readLog, recordAt } from "../../src/index.js";
import { decodeLogHeader } from "../../src/log/header.js";
import { createOracle, describeInterop, MAIL_FORMATS, ORACLE_GID, ORACLE_UID, sampleMessage, type DovecotOracle, type MailFormat } from "../helpers/dovecot.js";

const WORKER = fileURLToPath(new URL("../workers/concurrency-worker.mjs", import.meta.url));
const OPS = Number(process.env.CONCURRENCY_OPS ?? 100);
/** 45 s at the default 100 operations per writer (Maildir takes ~15–25 s on 2 busy cores); longer runs get time in proportion. */
const TEST_TIMEOUT_MS = 45_000 * Math.max(1, OPS / 100);
/** Messages saved before the run; flag changes target UIDs 1..INITIAL. */
const INITIAL = 12;
const MAILBOX = "INBOX";
/** Engine operations allowed per worker at once (every BURST doveadm operations). */
const BURST = 10;
/** System flags without \Recent (\Answered \Flagged \Deleted \Seen \Draft). */
const SYSTEM_FLAG_MASK = 0x1f;

interface FlagOp { kind: "flags"; action: "add" | "remove"; names: string[]; uid1: number; uid2: number }
interface SaveOp { kind: "save"; subject: string }
type Op = FlagOp | SaveOp;
interface WorkerReport { name: string; done: Op[]; retries: number; lockErrors: Record<string, number>; error?: string }

/** mulberry32, as in the worker. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class EngineWorker {
  readonly child: ChildProcessWithoutNullStreams;
  private out = "";
  private err = "";
  private readonly waiters: Array<() => void> = [];
  readonly exited: Promise<number | null>;

  constructor(location: string, cwd: string, readonly name: string, seed: number, sysFlag: string) {
    this.child = spawn(process.execPath, [WORKER, location, MAILBOX, name, String(seed), String(OPS), String(INITIAL), sysFlag], {
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
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => {
      resolve(code);
      for (const w of this.waiters.splice(0)) w();
    }));
  }

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

  async report(): Promise<WorkerReport> {
    const code = await this.exited;
    const last = this.out.trim().split("\n").pop() ?? "";
    let report: WorkerReport;
    try {
      report = JSON.parse(last) as WorkerReport;
    } catch (err) {
      throw new Error(`engine ${this.name} exited ${code} without a report (${String(err)}): stdout ${this.out.slice(-500)} stderr ${this.err.slice(-2000)}`);
    }
    if (report.error !== undefined || code !== 0) {
      throw new Error(`engine ${this.name} failed after ${report.done.length} acknowledged operations (exit ${code}): ${report.error ?? ""} ${this.err.slice(-2000)}`);
    }
    return report;
  }
}

/** file_seq and prev_file_seq of a log file, or undefined when it does not exist. */
function logHeader(file: string): { fileSeq: number; prevFileSeq: number } | undefined {
  if (!fs.existsSync(file)) return undefined;
  const h = decodeLogHeader(fs.readFileSync(file), file);
  return { fileSeq: h.fileSeq, prevFileSeq: h.prevFileSeq };
}

/**
 * The log was neither recreated nor reset: the same file_seq, or one chained
 * rotation (.log continues .log.2, which is the file we started with).
 */
function expectNoRecreation(prefix: string, before: number, tag: string): void {
  const head = logHeader(prefix + ".log");
  expect(head, `${tag} ${prefix}.log is gone`).toBeDefined();
  if (head!.fileSeq === before) return;
  expect(head!.fileSeq, `${tag} ${prefix}.log file_seq jumped from ${before} (recreated or rotated more than once)`).toBe(before + 1);
  expect(head!.prevFileSeq, `${tag} ${prefix}.log file_seq ${head!.fileSeq} does not continue ${before}: recreated, not rotated`).toBe(before);
  expect(logHeader(prefix + ".log.2")?.fileSeq, `${tag} ${prefix}.log.2 is not the file we started with`).toBe(before);
  // Throws LogChainError when .log does not continue .log.2 at its end.
  readLog(prefix);
}

/** The index prefixes whose logs the run appends to. */
function logPrefixes(o: DovecotOracle): string[] {
  const prefixes = [path.join(o.mailboxIndexDir(MAILBOX), "dovecot.index")];
  if (o.format === "mdbox") prefixes.push(path.join(o.storageDir(), "dovecot.map.index"));
  return prefixes;
}

/** Final owned flags per uid 1..INITIAL from each writer's acknowledged operations, in order. */
function expectedFlags(reports: readonly Op[][]): Map<number, string[]> {
  const result = new Map<number, string[]>();
  const perWriter = reports.map((ops) => {
    const flags = new Map<number, Set<string>>();
    for (const op of ops) {
      if (op.kind !== "flags") continue;
      for (let uid = op.uid1; uid <= op.uid2; uid++) {
        const set = flags.get(uid) ?? new Set<string>();
        for (const n of op.names) op.action === "add" ? set.add(n) : set.delete(n);
        flags.set(uid, set);
      }
    }
    return flags;
  });
  for (let uid = 1; uid <= INITIAL; uid++) {
    result.set(uid, perWriter.flatMap((m) => [...(m.get(uid) ?? [])]).sort());
  }
  return result;
}

async function runFormat(format: MailFormat, o: DovecotOracle, seed: number): Promise<void> {
  const tag = `[${format} seed=${seed}]`;
  for (let i = 1; i <= INITIAL; i++) await o.save(MAILBOX, sampleMessage(i));
  const prefixes = logPrefixes(o);
  const seqBefore = prefixes.map((p) => logHeader(p + ".log")!.fileSeq);

  const a = new EngineWorker(o.location, o.dir, "A", seed, "\\Flagged");
  const b = new EngineWorker(o.location, o.dir, "B", seed, "\\Answered");
  const workers = [a, b];
  let reports: WorkerReport[];
  const ours: Op[] = [];
  try {
    await Promise.all(workers.map((w) => w.ready()));
    const random = prng(seed);
    const pick = (n: number): number => Math.floor(random() * n);
    const owned = ["\\Draft", "$D0", "$D1", "$D2"];
    for (let i = 0; i < OPS; i++) {
      if (i % BURST === 0) for (const w of workers) w.send(`tick ${BURST}`);
      if (pick(10) === 0) {
        const subject = `D save ${i}`;
        await o.save(MAILBOX, sampleMessage(1000 + i, { subject }));
        ours.push({ kind: "save", subject });
      } else {
        const uid1 = 1 + pick(INITIAL);
        const uid2 = pick(3) === 0 ? Math.min(INITIAL, uid1 + pick(4)) : uid1;
        const names = owned.filter(() => pick(2) === 0);
        if (names.length === 0) names.push(owned[pick(owned.length)]);
        const action = pick(2) === 0 ? "add" : "remove";
        await o.flags(action, names.join(" "), ["mailbox", MAILBOX, "uid", uid1 === uid2 ? String(uid1) : `${uid1}:${uid2}`]);
        ours.push({ kind: "flags", action, names, uid1, uid2 });
      }
    }
    for (const w of workers) w.send("end");
    reports = await Promise.all(workers.map((w) => w.report()));
  } finally {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
  }
  console.log(`${tag} engine A ${reports[0].done.length} ops (${reports[0].retries} retried), engine B ${reports[1].done.length} ops (${reports[1].retries} retried), doveadm ${ours.length} ops`);
  for (const r of reports) for (const [message, n] of Object.entries(r.lockErrors)) console.log(`${tag} engine ${r.name} retried ${n}× after: ${message}`);

  // For a failure's post-mortem: with KEEP_ORACLE=1 the mailbox, its log and this file stay.
  fs.writeFileSync(path.join(o.dir, "concurrency-ops.json"), JSON.stringify({ seed, A: reports[0].done, B: reports[1].done, doveadm: ours }, null, 1));
  const writers = [reports[0].done, reports[1].done, ours];
  const flags = expectedFlags(writers);
  const saves = writers.flatMap((ops) => ops.flatMap((op) => (op.kind === "save" ? [op.subject] : []))).sort();
  const expected = [...flags].map(([uid, f]) => ({ uid, flags: f }));

  // doveadm first: the engine below runs as root and may write.
  const rows = await o.fetch("uid flags hdr.subject", ["mailbox", MAILBOX, "all"]);
  const dovecotFlags = rows.map((r) => ({ uid: Number(r.uid), flags: r.flags.split(" ").filter((f) => f && f !== "\\Recent").sort() }));
  expect(dovecotFlags.filter((r) => r.uid <= INITIAL), `${tag} doveadm fetch flags differ from the acknowledged changes`).toEqual(expected);
  expect(rows.slice(INITIAL).map((r) => r["hdr.subject"]).sort(), `${tag} doveadm: saved messages`).toEqual(saves);
  expect(dovecotFlags.filter((r) => r.uid > INITIAL && r.flags.length > 0), `${tag} doveadm: flags on saved messages`).toEqual([]);
  try {
    o.assertNoStderrProblems();
  } catch (err) {
    throw new Error(`${tag} ${(err as Error).message}`);
  }

  const storage = openStorage(o.location);
  try {
    const box = await storage.openMailbox(MAILBOX);
    const st = await box.refresh();
    const engineView: Array<{ uid: number; flags: string[] }> = [];
    const engineSubjects: string[] = [];
    for (let seq = 1; seq <= messageCount(st); seq++) {
      const r = recordAt(st, seq)!;
      engineView.push({ uid: r.uid, flags: [...flagNames(r.flags & SYSTEM_FLAG_MASK), ...r.keywords].sort() });
      if (r.uid > INITIAL) {
        const text = Buffer.from(await box.readMessage(r.uid)).toString("latin1");
        engineSubjects.push(/^Subject: (.*)$/m.exec(text)?.[1] ?? `<uid ${r.uid} without subject>`);
      }
    }
    await box.close();
    expect(engineView.filter((r) => r.uid <= INITIAL), `${tag} engine flags differ from the acknowledged changes`).toEqual(expected);
    expect(engineSubjects.sort(), `${tag} engine: saved messages`).toEqual(saves);
    expect(engineView, `${tag} engine and doveadm disagree`).toEqual(dovecotFlags);
  } finally {
    await storage.close();
  }
  prefixes.forEach((p, i) => expectNoRecreation(p, seqBefore[i], tag));
}

describeInterop("two engine processes and doveadm changing one mailbox at once", () => {
  let o: DovecotOracle | undefined;
  afterEach(async () => {
    await o?.cleanup();
    o = undefined;
  });

  for (const format of MAIL_FORMATS) {
    it(`${format}: every acknowledged flag change and save survives, doveadm sees no corruption, the log is not recreated`, async () => {
      const seed = Number(process.env.CONCURRENCY_SEED ?? Math.floor(Math.random() * 2 ** 31));
      o = createOracle(format);
      try {
        await runFormat(format, o, seed);
      } catch (err) {
        // Every failure names the seed that replays it.
        const e = err as Error;
        if (!e.message.includes(`seed=${seed}`)) e.message = `[${format} seed=${seed}] ${e.message}`;
        throw e;
      }
    }, TEST_TIMEOUT_MS);
  }
});
