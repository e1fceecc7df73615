/**
 * The concurrency campaign: per format, runs in which two engine processes
 * (worker.ts) and doveadm write the same mailbox at once (saves, flag
 * changes, expunges, copies, moves), then checks that nothing acknowledged
 * was lost or duplicated, UIDs and GUIDs are unique, the engine and doveadm
 * agree, doveadm complained about nothing and the logs were not recreated.
 * Pacing is by messages, not sleeps: every BURST doveadm operations each
 * worker may run BURST more, back to back, so all three contend throughout.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { flagNames, messageCount, openStorage, recordAt } from "../../src/index.js";
import { createOracle, parseFlags, sampleMessage, stderrProblems, type DovecotOracle, type MailFormat } from "../../test/helpers/dovecot-oracle.js";
import type { Progress } from "../lib/progress.js";
import type { CampaignReport, Failure } from "../lib/report.js";
import { deriveSeed, Rng } from "../lib/rng.js";
import { fmt, percentile } from "../lib/stats.js";
import { EngineWorker } from "./engine-worker.js";
import { logHeader, logRecreation } from "./log-check.js";
import { applyOwn, chooseOp, expectedFlags, expectedSubjects, ownedFlags, OP_KINDS, type Op, type OpKind, type OwnMessages, type WorkerReport } from "./ops.js";

/** Messages saved before the run; flag changes target UIDs 1..INITIAL. */
export const INITIAL = 12;
const MAILBOX = "INBOX";
const OTHER = "Other";
/** Engine operations allowed per worker at once (every BURST doveadm operations). */
const BURST = 10;
/** System flags without \Recent. */
const SYSTEM_FLAG_MASK = 0x1f;

export interface ConcurrencyOptions {
  readonly formats: readonly MailFormat[];
  /** Runs per format. */
  readonly rounds: number;
  /** Transactions per writer and run. */
  readonly transactions: number;
  readonly seed: number;
  /** Operations the writers do (default all: save, flags, expunge, copy, move). */
  readonly kinds?: readonly OpKind[];
  readonly deadline?: number;
  readonly progress: Progress;
}

/** What one run measured and found. */
export interface RunResult {
  readonly reports: WorkerReport[];
  readonly doveadmOps: Op[];
  readonly doveadmMs: number[];
  readonly problems: string[];
}

export async function runConcurrencyCampaign(opts: ConcurrencyOptions): Promise<CampaignReport> {
  const t0 = Date.now();
  const failures: Failure[] = [];
  const rows: Array<Array<string | number>> = [];
  const allWaits: number[] = [];
  let runs = 0;
  let transactions = 0;
  opts.progress.start(opts.formats.length * opts.rounds, "concurrency");
  for (const format of opts.formats) {
    const waits: number[] = [];
    const doveadmMs: number[] = [];
    let done = 0;
    let rounds = 0;
    let retries = 0;
    let problems = 0;
    for (let round = 0; round < opts.rounds && (opts.deadline === undefined || Date.now() < opts.deadline); round++) {
      const seed = deriveSeed(opts.seed, "concurrency", format, round);
      const o = createOracle(format);
      try {
        const r = await concurrentRun(o, seed, opts.transactions, opts.kinds ?? OP_KINDS);
        rounds++;
        done += r.reports.reduce((n, w) => n + w.done.length, r.doveadmOps.length);
        retries += r.reports.reduce((n, w) => n + w.retries, 0);
        for (const w of r.reports) waits.push(...w.lockWaitsMs);
        doveadmMs.push(...r.doveadmMs);
        problems += r.problems.length;
        for (const message of r.problems) {
          failures.push({ kind: "concurrency", where: `${format} run ${round}`, message, seed, replay: `npm run campaign -- concurrency --format ${format} --seed ${opts.seed} --rounds ${round + 1} --transactions ${opts.transactions}` });
        }
      } catch (err) {
        if (!(err instanceof Error)) throw err;
        problems++;
        failures.push({ kind: "error", where: `${format} run ${round}`, message: err.message, seed, replay: `npm run campaign -- concurrency --format ${format} --seed ${opts.seed} --rounds ${round + 1} --transactions ${opts.transactions}` });
      } finally {
        await o.cleanup();
      }
      opts.progress.tick(`${format}: ${failures.length} failures`);
    }
    runs += rounds;
    transactions += done;
    allWaits.push(...waits);
    rows.push([format, rounds, done, retries, fmt(percentile(waits, 0.5), 2), fmt(percentile(waits, 0.99)), fmt(percentile(doveadmMs, 0.5)), fmt(percentile(doveadmMs, 0.99)), problems]);
  }
  opts.progress.stop();
  return {
    campaign: "concurrency",
    seed: opts.seed,
    columns: ["format", "runs", "transactions (3 writers)", "LOCK_TIMEOUT retries", "engine lock wait p50 ms", "p99 ms", "doveadm command p50 ms", "p99 ms", "failures"],
    rows,
    figure: `concurrency: ${runs} runs, ${transactions} transactions by 2 engine processes and doveadm, ${failures.length} failures (lost, duplicated, disagreeing), engine log-lock wait p50 ${fmt(percentile(allWaits, 0.5), 2)} ms p99 ${fmt(percentile(allWaits, 0.99))} ms`,
    failures,
    durationMs: Date.now() - t0,
  };
}

/** One run on a fresh store. @returns what the writers did and every problem found (empty: all good). */
export async function concurrentRun(o: DovecotOracle, seed: number, transactions: number, kinds: readonly OpKind[]): Promise<RunResult> {
  for (let i = 1; i <= INITIAL; i++) await o.save(MAILBOX, sampleMessage(i));
  await o.mailboxCreate(OTHER);
  const prefixes = logPrefixes(o);
  const seqBefore = prefixes.map((p) => logHeader(p + ".log")!.fileSeq);
  const worker = (name: string, systemFlag: string) =>
    new EngineWorker({ location: o.location, mailbox: MAILBOX, other: OTHER, name, seed, ops: transactions, maxUid: INITIAL, systemFlag, kinds: [...kinds] }, o.dir);
  const workers = [worker("A", "\\Flagged"), worker("B", "\\Answered")];
  const ours: Op[] = [];
  const doveadmMs: number[] = [];
  let reports: WorkerReport[];
  try {
    await Promise.all(workers.map((w) => w.ready()));
    const rng = new Rng(seed);
    const owned = ownedFlags("D", "\\Draft");
    const own: OwnMessages = { main: new Set(), other: new Set() };
    for (let i = 0; i < transactions; i++) {
      if (i % BURST === 0) for (const w of workers) w.send(`tick ${BURST}`);
      const op = chooseOp((n) => rng.int(n), kinds, "D", i, owned, INITIAL, own);
      const t0 = performance.now();
      await doveadmOp(o, op, i);
      doveadmMs.push(performance.now() - t0);
      applyOwn(own, op);
      ours.push(op);
    }
    for (const w of workers) w.send("end");
    reports = await Promise.all(workers.map((w) => w.report()));
  } finally {
    for (const w of workers) w.kill();
  }
  // For a failure's post-mortem: with KEEP_ORACLE=1 the mailbox, its log and this file stay.
  fs.writeFileSync(path.join(o.dir, "concurrency-ops.json"), JSON.stringify({ seed, A: reports[0].done, B: reports[1].done, doveadm: ours }, null, 1));
  const problems = await check(o, [...reports.map((r) => r.done), ours]);
  prefixes.forEach((p, i) => {
    const wrong = logRecreation(p, seqBefore[i]);
    if (wrong) problems.push(wrong);
  });
  return { reports, doveadmOps: ours, doveadmMs, problems };
}

async function doveadmOp(o: DovecotOracle, op: Op, i: number): Promise<void> {
  const bySubject = (subject: string) => ["mailbox", MAILBOX, "header", "subject", subject];
  switch (op.kind) {
    case "save": return o.save(MAILBOX, sampleMessage(1000 + i, { subject: op.subject }));
    case "flags": return o.flags(op.action, op.names.join(" "), ["mailbox", MAILBOX, "uid", op.uid1 === op.uid2 ? String(op.uid1) : `${op.uid1}:${op.uid2}`]);
    case "expunge": return o.expunge(bySubject(op.subject));
    case "copy": return o.copy(OTHER, bySubject(op.subject));
    case "move": return o.move(OTHER, bySubject(op.subject));
  }
}

/** The index prefixes whose logs the run appends to. */
function logPrefixes(o: DovecotOracle): string[] {
  const prefixes = [MAILBOX, OTHER].map((m) => path.join(o.mailboxIndexDir(m), "dovecot.index"));
  if (o.format === "mdbox") prefixes.push(path.join(o.storageDir(), "dovecot.map.index"));
  return prefixes;
}

interface View {
  uid: number;
  flags: string[];
  subject: string;
  guid?: string;
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Checks both views against the writers' acknowledged operations. @returns the problems found. */
async function check(o: DovecotOracle, writers: Op[][]): Promise<string[]> {
  const problems: string[] = [];
  const flags = expectedFlags(writers, INITIAL);
  const expectedInitial = [...flags].map(([uid, f]) => ({ uid, flags: f }));
  const subjects = expectedSubjects(writers);
  const expectedByBox: Record<string, string[]> = { [MAILBOX]: subjects.main, [OTHER]: subjects.other };

  // doveadm first: the engine below runs as root and may write.
  const theirs: Record<string, View[]> = {};
  for (const m of [MAILBOX, OTHER]) {
    const rows = await o.fetch("uid flags guid hdr.subject", ["mailbox", m, "all"]);
    theirs[m] = rows.map((r) => ({ uid: Number(r.uid), flags: parseFlags(r.flags).sort(), subject: r["hdr.subject"] ?? "", guid: r.guid }));
  }
  problems.push(...o.stderrLog.flatMap((e) => stderrProblems(e.stderr).map((l) => `doveadm ${e.args.join(" ")}: ${l}`)));

  const ours: Record<string, View[]> = {};
  const storage = openStorage(o.location);
  try {
    for (const m of [MAILBOX, OTHER]) {
      const box = await storage.openMailbox(m);
      const st = await box.refresh();
      ours[m] = [];
      for (let seq = 1; seq <= messageCount(st); seq++) {
        const r = recordAt(st, seq)!;
        const text = Buffer.from(await box.readMessage(r.uid)).toString("latin1");
        ours[m].push({ uid: r.uid, flags: [...flagNames(r.flags & SYSTEM_FLAG_MASK), ...r.keywords].sort(), subject: /^Subject: (.*)$/m.exec(text)?.[1] ?? `<uid ${r.uid} without subject>` });
      }
      await box.close();
    }
  } finally {
    await storage.close();
  }

  for (const [who, view] of [["doveadm", theirs], ["engine", ours]] as const) {
    const initial = view[MAILBOX].filter((r) => r.uid <= INITIAL).map((r) => ({ uid: r.uid, flags: r.flags }));
    if (!sameJson(initial, expectedInitial)) problems.push(`${who}: flags of the first ${INITIAL} messages differ from the acknowledged changes: ${JSON.stringify(initial)} vs ${JSON.stringify(expectedInitial)}`);
    for (const m of [MAILBOX, OTHER]) {
      const saved = view[m].filter((r) => m !== MAILBOX || r.uid > INITIAL);
      const got = saved.map((r) => r.subject).sort();
      if (!sameJson(got, expectedByBox[m])) {
        const missing = expectedByBox[m].filter((s) => !got.includes(s));
        const extra = got.filter((s, i) => !expectedByBox[m].includes(s) || got.indexOf(s) !== i);
        problems.push(`${who}: ${m} lost [${missing.join(" ")}] and has extra or duplicated [${extra.join(" ")}]`);
      }
      const flagged = saved.filter((r) => r.flags.length > 0);
      if (flagged.length > 0) problems.push(`${who}: ${m} saved messages with flags nobody set: ${JSON.stringify(flagged.slice(0, 3))}`);
      const uids = view[m].map((r) => r.uid);
      if (new Set(uids).size !== uids.length) problems.push(`${who}: ${m} has duplicate UIDs`);
      const guids = view[m].flatMap((r) => (r.guid ? [r.guid] : []));
      if (new Set(guids).size !== guids.length) problems.push(`${who}: ${m} has duplicate GUIDs`);
    }
  }
  for (const m of [MAILBOX, OTHER]) {
    const strip = (v: View[]) => v.map((r) => ({ uid: r.uid, flags: r.flags, subject: r.subject }));
    if (!sameJson(strip(ours[m]), strip(theirs[m]))) problems.push(`engine and doveadm disagree on ${m}`);
  }
  return problems;
}
