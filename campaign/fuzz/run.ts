/**
 * The fuzz campaign: mutated copies of real files (corpus.ts) go to every
 * reader in process (fast); every Nth input also runs in a subprocess (hang,
 * crash) and, when the file belongs to a store, is put into a copy of that
 * store on which the engine works on INBOX while Other must not change
 * (damage to another mailbox). Every input has its own seed.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { MailstoreError } from "../../src/index.js";
import type { MailFormat } from "../../test/helpers/dovecot-oracle.js";
import type { Progress } from "../lib/progress.js";
import type { CampaignReport, Failure } from "../lib/report.js";
import { deriveSeed, Rng } from "../lib/rng.js";
import { loadOrBuildCorpus, type Corpus, type CorpusEntry } from "./corpus.js";
import { mutate, randomMutations } from "./mutate.js";
import { BYSTANDER_MAILBOX, mailboxFingerprint, WORKED_MAILBOX } from "./store-work.js";
import { FuzzChild } from "./subprocess.js";
import { classify, FAILING_OUTCOMES, FUZZ_TARGET_NAMES, READERS, type Classified, type FuzzTarget, type Outcome } from "./targets.js";

export { FUZZ_TARGET_NAMES };

/** A subprocess request with no answer in this time is a hang. */
const CHILD_TIMEOUT_MS = 10_000;

export interface FuzzOptions {
  readonly formats: readonly MailFormat[];
  readonly inputsPerTarget: number;
  readonly targets?: readonly string[];
  /** Every Nth input also runs in the subprocess and on a whole store. */
  readonly sampleEvery: number;
  /** Replay only this input. */
  readonly only?: number;
  readonly seed: number;
  /** Where the corpus is kept (default: campaign-results/fuzz-corpus-seed<S>); failing inputs go beside it. */
  readonly corpusDir?: string;
  readonly deadline?: number;
  readonly progress: Progress;
}

interface Row {
  inputs: number;
  outcomes: Map<Outcome, number>;
  sampled: number;
  stores: number;
  storesNotComparable: number;
}

export async function runFuzzCampaign(opts: FuzzOptions): Promise<CampaignReport> {
  const t0 = Date.now();
  const corpusDir = path.resolve(opts.corpusDir ?? path.join("campaign-results", `fuzz-corpus-seed${opts.seed}`));
  const corpus = await loadOrBuildCorpus(corpusDir, opts.formats);
  const targets = (opts.targets ?? FUZZ_TARGET_NAMES) as FuzzTarget[];
  const child = new FuzzChild(CHILD_TIMEOUT_MS);
  const failures = new Map<string, Failure & { count: number }>();
  const rows = new Map<FuzzTarget, Row>();
  const formatsArg = opts.formats.join(",");
  opts.progress.start(targets.length * (opts.only === undefined ? opts.inputsPerTarget : 1), "fuzz");
  try {
    for (const target of targets) {
      const entries = corpus.entries.filter((e) => e.target === target && opts.formats.includes(e.format));
      const row: Row = { inputs: 0, outcomes: new Map(), sampled: 0, stores: 0, storesNotComparable: 0 };
      rows.set(target, row);
      if (entries.length === 0) continue;
      const inputs = opts.only === undefined ? [...Array(opts.inputsPerTarget).keys()] : [opts.only];
      for (const i of inputs) {
        if (opts.deadline !== undefined && Date.now() >= opts.deadline) break;
        const seed = deriveSeed(opts.seed, "fuzz", target, i);
        const input = makeInput(corpus, entries, seed);
        const results = [await classify(() => READERS[target](input.bytes, input.file, input.entry.format))];
        if (i % opts.sampleEvery === 0 || opts.only !== undefined) {
          row.sampled++;
          results.push(await child.ask({ kind: "parse", target, file: input.file, format: input.entry.format, bytes: Buffer.from(input.bytes).toString("base64") }));
          if (input.entry.storeRel !== undefined) {
            const damage = await storeSample(corpus, input.entry, input.bytes, child);
            row.stores++;
            if (damage === undefined) row.storesNotComparable++;
            else results.push(damage);
          }
        }
        const worst = results.find((r) => FAILING_OUTCOMES.has(r.outcome)) ?? results[0];
        row.inputs++;
        row.outcomes.set(worst.outcome, (row.outcomes.get(worst.outcome) ?? 0) + 1);
        if (FAILING_OUTCOMES.has(worst.outcome)) {
          recordFailure(failures, corpusDir, { target, i, seed, input, result: worst, replay: `npm run campaign -- fuzz --format ${formatsArg} --seed ${opts.seed} --target ${target} --input ${i}` });
        }
        opts.progress.tick(`${target}: ${failures.size} distinct failures`);
      }
    }
  } finally {
    child.close();
    opts.progress.stop();
  }
  return fuzzReport(opts.seed, rows, [...failures.values()], Date.now() - t0);
}

interface Input {
  readonly entry: CorpusEntry;
  /** The path the reader is told (the corpus file's). */
  readonly file: string;
  readonly bytes: Uint8Array;
}

function makeInput(corpus: Corpus, entries: readonly CorpusEntry[], seed: number): Input {
  const rng = new Rng(seed);
  const entry = rng.pick(entries);
  const file = path.join(corpus.dir, entry.file);
  const original = fs.readFileSync(file);
  return { entry, file, bytes: mutate(original, randomMutations(rng, original.length)) };
}

/**
 * Puts `bytes` in place of the entry's file in a copy of its store; the
 * subprocess works on INBOX; Other must read the same before and after.
 * @returns damage, the subprocess's hang/crash/untyped outcome, or ok;
 *   undefined when Other could not be read even before (a shared file broke
 *   it, nothing to compare).
 */
async function storeSample(corpus: Corpus, entry: CorpusEntry, bytes: Uint8Array, child: FuzzChild): Promise<Classified | undefined> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-fuzz-store-"));
  try {
    fs.cpSync(path.join(corpus.dir, entry.format, "store"), root, { recursive: true });
    fs.writeFileSync(path.join(root, entry.storeRel!), bytes);
    const location = corpus.locations[entry.format]!.split("{root}").join(root);
    const before = await fingerprint(location);
    if (before === undefined) return undefined;
    const worked = await child.ask({ kind: "store", location, mailbox: WORKED_MAILBOX });
    const after = await fingerprint(location);
    if (after !== before) return { outcome: "damage", detail: `${BYSTANDER_MAILBOX} changed while the engine worked on ${WORKED_MAILBOX} (${worked.outcome}): ${after === undefined ? "it no longer opens" : "its messages or flags differ"}`, ms: worked.ms };
    return worked;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

async function fingerprint(location: string): Promise<string | undefined> {
  try {
    return await mailboxFingerprint(location, BYSTANDER_MAILBOX);
  } catch (err) {
    if (err instanceof MailstoreError) return undefined;
    throw err;
  }
}

/** One failure per distinct signature (outcome + first line of the detail), with a count; the input's bytes are kept. */
function recordFailure(
  failures: Map<string, Failure & { count: number }>,
  corpusDir: string,
  f: { target: FuzzTarget; i: number; seed: number; input: Input; result: Classified; replay: string },
): void {
  const firstLine = (f.result.detail ?? "").split("\n")[0].replace(/\d+/g, "N");
  const key = `${f.target} ${f.result.outcome} ${firstLine}`;
  const known = failures.get(key);
  if (known) {
    known.count++;
    return;
  }
  const dir = `${corpusDir}-failures`;
  fs.mkdirSync(dir, { recursive: true });
  const saved = path.join(dir, `${f.target}-input${f.i}-seed${f.seed}.bin`);
  fs.writeFileSync(saved, f.input.bytes);
  failures.set(key, {
    kind: f.result.outcome,
    where: `${f.target} input ${f.i} (${f.input.entry.format} ${f.input.entry.origin} ${f.input.entry.file}; bytes in ${saved})`,
    message: f.result.detail ?? "",
    seed: f.seed,
    replay: f.replay,
    count: 1,
  });
}

function fuzzReport(seed: number, rows: Map<FuzzTarget, Row>, failures: Array<Failure & { count: number }>, durationMs: number): CampaignReport {
  const n = (r: Row, o: Outcome) => r.outcomes.get(o) ?? 0;
  const table = [...rows].map(([t, r]) => [t, r.inputs, n(r, "ok"), n(r, "typed"), n(r, "untyped"), n(r, "slow"), r.sampled, n(r, "hang"), n(r, "crash"), `${r.stores - r.storesNotComparable}/${r.stores}`, n(r, "damage")]);
  const sum = (i: number) => table.reduce((s, r) => s + Number(r[i]), 0);
  return {
    campaign: "fuzz",
    seed,
    columns: ["parser", "inputs", "read", "typed error", "untyped throw", "slow (>1 s)", "in subprocess", "hang", "crash", "on a store (compared/placed)", "damage to another mailbox"],
    rows: table,
    figure: `fuzz: ${sum(1)} mutated inputs over ${table.filter((r) => Number(r[1]) > 0).length} parsers: ${sum(2)} read, ${sum(3)} typed errors, ${sum(4)} untyped throws, ${sum(5)} slow, ${sum(7)} hangs, ${sum(8)} crashes, ${sum(10)} damaged another mailbox (${sum(6)} also in a subprocess; ${failures.length} distinct failures)`,
    failures: failures.map((f) => ({ ...f, message: `${f.count}× ${f.message}` })),
    durationMs,
  };
}
