/**
 * `npm run campaign -- crash|concurrency|fuzz [--rounds N] [--seed S] [--format F] …`:
 * long reliability campaigns, run outside CI (CI runs a short version of each:
 * test/interop/campaigns.test.ts). Each prints its seed first, progress on
 * stderr, its table, failures with replay commands, and a one-line figure
 * last; the report also goes to campaign-results/ as JSON.
 */
import * as path from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { MAIL_FORMATS, type MailFormat } from "../test/helpers/dovecot-oracle.js";
import { runConcurrencyCampaign } from "./concurrency/run.js";
import { runCrashCampaign } from "./crash/run.js";
import { CRASH_OPS, type CrashOp } from "./crash/steps.js";
import { FUZZ_TARGET_NAMES, runFuzzCampaign } from "./fuzz/run.js";
import { consoleProgress } from "./lib/progress.js";
import { printReport, writeReport, type CampaignReport } from "./lib/report.js";
import { freshSeed } from "./lib/rng.js";

const int = (what: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${what} must be a non-negative integer`);
  return n;
};
const list = <T extends string>(known: readonly T[]) => (v: string): T[] => {
  const items = v.split(",");
  for (const i of items) if (!known.includes(i as T)) throw new InvalidArgumentError(`unknown ${i}; known: ${known.join(", ")}`);
  return items as T[];
};

interface CommonOptions {
  seed?: number;
  format: MailFormat[];
  minutes?: number;
  out: string;
}

async function finish(run: (seed: number, deadline: number | undefined) => Promise<CampaignReport>, o: CommonOptions): Promise<void> {
  const seed = o.seed ?? freshSeed();
  console.log(`seed ${seed} (replay with --seed ${seed})`);
  const report = await run(seed, o.minutes === undefined ? undefined : Date.now() + o.minutes * 60_000);
  printReport(report, (line) => console.log(line));
  console.log(`results: ${writeReport(report, o.out, process.argv.slice(2))}`);
  if (report.failures.length > 0) process.exitCode = 1;
}

function common(cmd: Command): Command {
  return cmd
    .option("--seed <n>", "seed of the run (default: random; printed)", int("--seed"))
    .addOption(new Option("--format <list>", "drivers, comma-separated").default([...MAIL_FORMATS]).argParser(list(MAIL_FORMATS)))
    .option("--minutes <n>", "stop starting new rounds after this many minutes", int("--minutes"))
    .option("--out <dir>", "where the JSON report goes", "campaign-results");
}

const program = new Command("campaign").description("mailstore reliability campaigns (need doveadm and root)").exitOverride();

common(program.command("crash").description("SIGKILL a worker at random moments during each operation, per driver; check with the engine and doveadm"))
  .option("--rounds <n>", "rounds per driver", int("--rounds"), 36)
  .option("--ops <list>", `operations (default all the driver has): ${CRASH_OPS.join(",")}`, list(CRASH_OPS))
  .option("--kill-max-ms <n>", "latest kill after the worker is ready", int("--kill-max-ms"), 600)
  .action((o: CommonOptions & { rounds: number; ops?: CrashOp[]; killMaxMs: number }) =>
    finish((seed, deadline) => runCrashCampaign({ formats: o.format, roundsPerFormat: o.rounds, seed, ops: o.ops, killMaxMs: o.killMaxMs, deadline, progress: consoleProgress() }), o));

common(program.command("concurrency").description("two engine processes and doveadm write one mailbox at once, per format"))
  .option("--rounds <n>", "runs per format", int("--rounds"), 3)
  .option("--transactions <n>", "transactions per writer and run", int("--transactions"), 100)
  .action((o: CommonOptions & { rounds: number; transactions: number }) =>
    finish((seed, deadline) => runConcurrencyCampaign({ formats: o.format, rounds: o.rounds, transactions: o.transactions, seed, deadline, progress: consoleProgress() }), o));

common(program.command("fuzz").description("mutate real files written by doveadm and the engine, for every parser; classify each outcome"))
  .option("--rounds <n>", "mutated inputs per parser", int("--rounds"), 2000)
  .option("--target <list>", `parsers: ${FUZZ_TARGET_NAMES.join(",")}`, list(FUZZ_TARGET_NAMES))
  .option("--sample <n>", "every Nth input also runs in a subprocess (hang, crash) and on a whole store (damage)", int("--sample"), 25)
  .option("--input <n>", "replay only input N (with --seed and --target)", int("--input"))
  .action((o: CommonOptions & { rounds: number; target?: string[]; sample: number; input?: number }) =>
    finish((seed, deadline) => runFuzzCampaign({ formats: o.format, inputsPerTarget: o.rounds, targets: o.target, sampleEvery: o.sample, only: o.input, seed, deadline, corpusDir: path.join(o.out, `fuzz-corpus-seed${seed}`), progress: consoleProgress() }), o));

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CommanderError)) throw err;
  process.exitCode = err.exitCode === 0 ? 0 : 64;
}
