/**
 * The crash campaign: per driver, rounds that each start a worker aimed at
 * one operation, SIGKILL it at a random moment, and check the store with the
 * engine and doveadm (verify.ts). Rounds run one after another on the same
 * store, so a round's seed replays it only with the rounds before it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { openStorage } from "../../src/index.js";
import { createOracle, type DovecotOracle, type MailFormat } from "../../test/helpers/dovecot-oracle.js";
import { runAndKill } from "../../test/helpers/kill-worker.js";
import { distModule } from "../lib/paths.js";
import type { Progress } from "../lib/progress.js";
import type { CampaignReport, Failure } from "../lib/report.js";
import { deriveSeed, Rng } from "../lib/rng.js";
import { expectedFrom, INFORMATIONAL, type ProblemKind } from "./compare.js";
import { CRASH_MAILBOXES, crashOpsFor, emptyExpected, foldJournal, stepKeys, type CrashOp, type Expected } from "./steps.js";
import { verifyAfterKill } from "./verify.js";
import type { WorkerConfig } from "./worker.js";

export interface CrashOptions {
  readonly formats: readonly MailFormat[];
  /** Rounds per driver, spread evenly over its operations. */
  readonly roundsPerFormat: number;
  readonly seed: number;
  /** Only these operations (default: every operation the driver has). */
  readonly ops?: readonly CrashOp[];
  /** The kill lands 20 ms to this long after the worker is ready (default 600). */
  readonly killMaxMs?: number;
  /** Stop starting rounds after this time (Date.now() value). */
  readonly deadline?: number;
  readonly progress: Progress;
}

interface Cell {
  rounds: number;
  acked: number;
  adopted: number;
  tempfails: number;
  midStep: number;
  movesFinished: number;
  problems: Map<ProblemKind, number>;
}

/** Runs the campaign. @returns its report; every failure names its seed and a replay command. */
export async function runCrashCampaign(opts: CrashOptions): Promise<CampaignReport> {
  const t0 = Date.now();
  const worker = distModule("campaign/crash/worker.js");
  const cells = new Map<string, Cell>();
  const failures: Failure[] = [];
  let dotlocks = 0;
  const plan = opts.formats.map((f) => ({ format: f, ops: crashOpsFor(f).filter((op) => !opts.ops || opts.ops.includes(op)) }));
  opts.progress.start(plan.reduce((n, p) => n + (p.ops.length > 0 ? opts.roundsPerFormat : 0), 0), "crash");
  for (const { format, ops } of plan) {
    if (ops.length === 0) continue;
    const o = createOracle(format, { alt: format === "sdbox" || format === "mdbox", autoChown: true });
    try {
      await bootstrap(o);
      let expected: Expected = emptyExpected();
      const limbo = new Set<string>();
      const tainted = new Set<string>();
      for (let round = 0; round < opts.roundsPerFormat && (opts.deadline === undefined || Date.now() < opts.deadline); round++) {
        const op = ops[round % ops.length];
        const seed = deriveSeed(opts.seed, "crash", format, round);
        const cell = cells.get(`${format} ${op}`) ?? { rounds: 0, acked: 0, adopted: 0, tempfails: 0, midStep: 0, movesFinished: 0, problems: new Map() };
        cells.set(`${format} ${op}`, cell);
        const result = await crashRound(o, worker, { op, seed, round, expected, limbo, tainted, killMaxMs: opts.killMaxMs ?? 600 });
        cell.rounds++;
        cell.acked += result.acked;
        cell.adopted += result.problems.filter((p) => p.kind === "adopted").length;
        cell.tempfails += result.problems.filter((p) => p.kind === "doveadm-tempfail").length;
        if (result.midStep) cell.midStep++;
        if (result.moveToFinish) cell.movesFinished++;
        dotlocks += result.dotlocksLeft;
        for (const p of result.problems.filter((p) => !INFORMATIONAL.has(p.kind))) {
          cell.problems.set(p.kind, (cell.problems.get(p.kind) ?? 0) + 1);
          failures.push({
            kind: p.kind,
            where: `${format} ${op} round ${round}`,
            message: p.message,
            seed,
            replay: `npm run campaign -- crash --format ${format} --seed ${opts.seed} --rounds ${round + 1}${opts.ops ? ` --ops ${opts.ops.join(",")}` : ""}`,
          });
        }
        expected = result.expected;
        opts.progress.tick(`${format} ${op}: ${failures.length} failures`);
      }
    } finally {
      await o.cleanup();
    }
  }
  opts.progress.stop();
  return crashReport(opts.seed, cells, failures, dotlocks, Date.now() - t0);
}

async function bootstrap(o: DovecotOracle): Promise<void> {
  const storage = openStorage(o.location);
  await storage.createMailbox("Other");
  const inbox = await storage.openMailbox("INBOX");
  await inbox.close();
  await storage.close();
}

interface RoundInput {
  readonly op: CrashOp;
  readonly seed: number;
  readonly round: number;
  readonly expected: Expected;
  /** Keys of interrupted steps not acknowledged since (updated here). */
  readonly limbo: Set<string>;
  /** Keys whose interrupted step's message surfaced late (updated here). */
  readonly tainted: Set<string>;
  readonly killMaxMs: number;
}

async function crashRound(o: DovecotOracle, worker: string, input: RoundInput) {
  const rng = new Rng(input.seed);
  const journalFile = path.join(o.dir, `journal-${input.round}`);
  fs.writeFileSync(journalFile, "");
  const cfg: WorkerConfig = {
    location: o.location, journalFile, op: input.op, seed: input.seed,
    firstId: (input.round + 1) * 100_000, scratchDir: path.join(o.dir, "scratch"),
  };
  const stderr = await runAndKill(worker, [JSON.stringify(cfg)], { killAfterMs: 20 + rng.int(input.killMaxMs) }).catch((err: unknown) => {
    // Exited before "ready": the engine could not even open what the last kill left.
    if (!(err instanceof Error)) throw err;
    return err.message;
  });
  const fold = foldJournal(journalFile, input.expected);
  const verified = await verifyAfterKill(o, fold, input.limbo, input.tainted, input.round % 2 === 1);
  for (const step of fold.acked) for (const key of stepKeys(step)) input.limbo.delete(key);
  if (fold.inFlight) for (const key of stepKeys(fold.inFlight)) input.limbo.add(key);
  // What an interrupted expunge or copy leaves may come back at any later rebuild, and in
  // either mailbox: sdbox unlinks an expunged u.N after the log commit (as Dovecot's
  // dbox_sync_expunge_files() does after its sync commit), and mdbox raises a copy's map
  // refcount before it writes the mailbox record (mdbox/save.ts: a kill between leaks a
  // refcount, never data), so its rebuild puts the message back where it was first saved,
  // even when that original was expunged since.
  const step = fold.inFlight;
  if (step?.kind === "expunge" || step?.kind === "copy" || step?.kind === "move") for (const m of CRASH_MAILBOXES) input.tainted.add(`${m} ${step.id}`);
  for (const p of verified.problems) if (p.kind === "adopted" && p.key) input.tainted.add(p.key);
  const problems = [...(stderr.trim() === "" ? [] : [{ kind: "worker-error" as const, message: stderr.trim() }]), ...verified.problems];
  return {
    acked: fold.acked.length,
    midStep: fold.inFlight !== undefined,
    problems,
    dotlocksLeft: verified.dotlocksLeft,
    moveToFinish: verified.moveToFinish,
    expected: verified.engineFound ? expectedFrom(verified.engineFound) : fold.expected,
  };
}

function crashReport(seed: number, cells: Map<string, Cell>, failures: Failure[], dotlocks: number, durationMs: number): CampaignReport {
  const count = (c: Cell, ...kinds: ProblemKind[]) => kinds.reduce((n, k) => n + (c.problems.get(k) ?? 0), 0);
  const rows = [...cells].map(([key, c]) => {
    const [format, op] = key.split(" ");
    const other = [...c.problems].filter(([k]) => k !== "loss" && k !== "duplicate").reduce((n, [, v]) => n + v, 0);
    return [format, op, c.rounds, c.acked, c.midStep, count(c, "loss"), count(c, "duplicate"), other, c.adopted, c.tempfails, c.movesFinished];
  });
  const total = (i: number) => rows.reduce((n, r) => n + Number(r[i]), 0);
  const formats = new Set([...cells.keys()].map((k) => k.split(" ")[0])).size;
  return {
    campaign: "crash",
    seed,
    columns: ["driver", "operation", "rounds", "acknowledged steps", "kills mid-step", "lost", "duplicated", "other failures", "interrupted steps surfacing later", "doveadm exit 75, clean on retry", "killed moves left to the next open"],
    rows,
    figure: `crash: ${total(2)} SIGKILL rounds over ${formats} drivers, ${total(3)} acknowledged steps, ${total(4)} kills mid-step, ${total(5)} lost, ${total(6)} duplicated, ${total(7)} other failures; ${total(8)} interrupted steps surfaced later, ${total(9)} doveadm fetches retried after exit 75, ${dotlocks} dotlocks left by killed workers (each naming its dead pid), ${total(10)} killed moves left to the next open (finished, or dropped when the copy had not landed)`,
    failures,
    durationMs,
  };
}
