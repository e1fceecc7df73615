/**
 * Short versions of the reliability campaigns (campaign/, `npm run
 * campaign`): a crash round per driver and operation, 3 writers × 20
 * concurrent transactions per format, and ~2700 fuzz inputs. Each failure
 * names the run's seed and a command that replays it; CAMPAIGN_SEED=<n>
 * replays a whole CI run. The workers run from dist/ (`npm run build`).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, expect, it } from "vitest";
import { runConcurrencyCampaign } from "../../campaign/concurrency/run.js";
import { runCrashCampaign } from "../../campaign/crash/run.js";
import { crashOpsFor } from "../../campaign/crash/steps.js";
import { runFuzzCampaign } from "../../campaign/fuzz/run.js";
import { silentProgress } from "../../campaign/lib/progress.js";
import { markdownTable, type CampaignReport } from "../../campaign/lib/report.js";
import { freshSeed } from "../../campaign/lib/rng.js";
import { describeInterop, MAIL_FORMATS } from "../helpers/dovecot.js";

const seed = process.env.CAMPAIGN_SEED === undefined ? freshSeed() : Number(process.env.CAMPAIGN_SEED);

/** Fails with every failure, its seed and replay command in the message; prints the table. */
function expectClean(report: CampaignReport): void {
  console.log([...markdownTable(report), report.figure].join("\n"));
  const lines = report.failures.map((f) => `${f.kind} at ${f.where} (seed ${f.seed}): ${f.message.split("\n")[0]}\n  replay: ${f.replay}`);
  expect(lines, `${report.campaign} campaign, CAMPAIGN_SEED=${seed}:\n${lines.join("\n")}`).toEqual([]);
}

describeInterop("reliability campaigns, short versions (npm run campaign for the long ones)", () => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-campaigns-"));
  afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

  it("crash: one SIGKILL round per driver and operation loses, duplicates and damages nothing", async () => {
    const rounds = Math.max(...MAIL_FORMATS.map((f) => crashOpsFor(f).length));
    expectClean(await runCrashCampaign({ formats: MAIL_FORMATS, roundsPerFormat: rounds, seed, progress: silentProgress }));
  }, 150_000);

  it("concurrency: 2 engine processes and doveadm, 20 transactions each, per format", async () => {
    expectClean(await runConcurrencyCampaign({ formats: MAIL_FORMATS, rounds: 1, transactions: 20, seed, progress: silentProgress }));
  }, 90_000);

  it("fuzz: 300 mutated real files per parser give typed errors or read, in process and in a subprocess sample", async () => {
    expectClean(await runFuzzCampaign({ formats: MAIL_FORMATS, inputsPerTarget: 300, sampleEvery: 25, seed, corpusDir: path.join(scratch, "corpus"), progress: silentProgress }));
  }, 90_000);
});
