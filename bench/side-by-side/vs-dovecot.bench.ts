import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fmt, median } from "../util.js";
import { DoveadmRunner, measureMailstore, measureNoops, settleWriteback, workRatio, writeSampleMbox, type Measured } from "../dovecot.js";
import { dropIndexes, EmbeddedSteps } from "./embedded-steps.js";

/**
 * Issue #11's side-by-side run (`vs-dovecot`): doveadm and the engine do the
 * same mdbox work on copies of one generated mbox, at each size asked for:
 * import, fetch every text, flag all, flag one, expunge half, purge, reopen
 * (mailbox status) and rebuild after index loss. Each step runs as a whole
 * doveadm process, a whole `mailstore` process, and embedded (the engine in
 * this process, storage opened once, as a server runs it).
 *
 * The whole-process ratio is the *work* ratio: each tool's own no-op
 * (`mailbox status messages Empty` on an empty mailbox, median of 9) is
 * subtracted from its times first. Peak RSS is GNU time(1)'s, when installed.
 * A whole-process figure is the median of `repeat` runs (doveadm and the
 * engine in turns), each but the last on a fresh copy (`cp -a`) of the store
 * as it was before the step, the last on the store itself: a short step is a
 * few milliseconds above a no-op that itself varies by as much. Every timed
 * run, embedded too, starts after a sync(1) (settleWriteback).
 */
export interface VsDovecotOptions {
  readonly sizes: readonly number[];
  /** Whole-process runs per step and tool (default 3). */
  readonly repeat?: number;
}

interface StepTimes {
  readonly step: string;
  readonly doveadm: Measured;
  readonly engine: Measured;
  readonly embedded: number;
}

export async function vsDovecotBench(opts: VsDovecotOptions): Promise<string[]> {
  if (!DoveadmRunner.available()) return ["| vs-dovecot | (needs doveadm and root) | | |"];
  const dovecot = new DoveadmRunner();
  try {
    const noop = measureNoops(dovecot, (dir) => `mdbox:${dir}`, NOOP_RUNS);
    const repeat = opts.repeat ?? 3;
    const rows = [
      "",
      `No-op (\`mailbox status messages Empty\` on an empty mailbox, median of ${NOOP_RUNS}): doveadm ${fmt(noop.doveadm)} s, mailstore ${fmt(noop.engine)} s, \`node -e 0\` ${fmt(noop.node)} s: the engine's no-op is ${fmt(noop.engine / noop.node)}× \`node -e 0\`.`,
      "",
      `Whole-process times: medians of ${repeat} runs each (fresh copies of the store before the step, then the store itself).`,
      "",
      "| messages | step | doveadm s | engine s (whole process) | engine s (embedded) | work ratio, whole process (no-ops subtracted) | ratio, embedded | peak RSS doveadm | peak RSS engine |",
      "|---|---|---|---|---|---|---|---|---|",
    ];
    for (const size of opts.sizes) {
      for (const t of await runSize(dovecot, size, repeat)) {
        const work = workRatio(t.engine.seconds, t.doveadm.seconds, noop);
        rows.push(`| ${size.toLocaleString("en")} | ${t.step} | ${fmt(t.doveadm.seconds)} | ${fmt(t.engine.seconds)} | ${fmt(t.embedded)} | ${fmt(work)} | ${fmt(t.embedded / t.doveadm.seconds)} | ${mib(t.doveadm.peakRss)} | ${mib(t.engine.peakRss)} |`);
      }
    }
    return rows;
  } finally {
    dovecot.cleanup();
  }
}

function mib(bytes: number | undefined): string {
  return bytes === undefined ? "n/a" : `${fmt(bytes / 2 ** 20)} MiB`;
}

/** One size: a fresh mbox, three fresh mdbox stores, every step on each. */
async function runSize(dovecot: DoveadmRunner, count: number, repeat: number): Promise<StepTimes[]> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-bench-mdbox-"));
  fs.chmodSync(work, 0o755);
  const mboxDir = path.join(work, "src");
  fs.mkdirSync(path.join(mboxDir, "mail"), { recursive: true });
  const inboxFile = path.join(mboxDir, "inbox");
  const bytes = writeSampleMbox(inboxFile, count, 2250);
  const source = `mbox:${mboxDir}/mail:INBOX=${inboxFile}`;
  const dovecotRoot = path.join(work, "dovecot");
  const engineRoot = path.join(work, "engine");
  const embeddedRoot = path.join(work, "embedded");
  fs.mkdirSync(dovecotRoot);
  dovecot.chown(work);
  const half = Math.floor(count / 2);
  const embedded = new EmbeddedSteps(`mdbox:${embeddedRoot}`, source, half);
  const oneUid = String(half + 1);
  const both = (args: string[]): [WholeStep, WholeStep] => [(root) => dovecot.measure(`mdbox:${root}`, args), (root) => measureMailstore(["-l", `mdbox:${root}`, ...args])];
  const steps: Array<[string, [WholeStep, WholeStep], () => Promise<number>]> = [
    [`import (${fmt(bytes / 1e6)} MB mbox)`, [(root) => dovecot.measure(`mdbox:${root}`, ["import", source, "", "all"]), (root) => measureMailstore(["-l", `mdbox:${root}`, "import", source])], () => embedded.import()],
    ["fetch text all", both(["fetch", "text", "mailbox", "INBOX", "all"]), () => embedded.fetchAll()],
    ["flag all \\Seen", both(["flags", "add", "\\Seen", "mailbox", "INBOX", "all"]), () => embedded.flagAll()],
    [`flag one (uid ${oneUid} \\Flagged)`, both(["flags", "add", "\\Flagged", "mailbox", "INBOX", "uid", oneUid]), () => embedded.flagOne(half + 1)],
    [`expunge half (uid 1:${half})`, both(["expunge", "mailbox", "INBOX", "uid", `1:${half}`]), () => embedded.expungeHalf()],
    ["purge", both(["purge"]), () => embedded.purge()],
    ["reopen (mailbox status)", both(["mailbox", "status", "messages uidnext highestmodseq", "INBOX"]), () => embedded.reopen()],
    ["rebuild after index loss (force-resync)", [
      (root) => { dropIndexes(root); return dovecot.measure(`mdbox:${root}`, ["force-resync", "*"]); },
      (root) => { dropIndexes(root); return measureMailstore(["-l", `mdbox:${root}`, "force-resync", "*"]); },
    ], () => { dropIndexes(embeddedRoot); return embedded.rebuild(); }],
  ];
  const out: StepTimes[] = [];
  try {
    for (const [step, [theirs, ours], inProcess] of steps) {
      const doveadm: Measured[] = [];
      const engine: Measured[] = [];
      for (let run = 1; run <= repeat; run++) {
        const last = run === repeat;
        doveadm.push(onStore(dovecotRoot, last, theirs, (copy) => dovecot.chown(copy)));
        engine.push(onStore(engineRoot, last, ours));
      }
      settleWriteback();
      out.push({ step, doveadm: medianOf(doveadm), engine: medianOf(engine), embedded: await inProcess() });
    }
  } finally {
    await embedded.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
  return out;
}

/** A step run as a whole process on the mail root it is given. */
type WholeStep = (root: string) => Measured;

const NOOP_RUNS = 9;

/**
 * Runs `step` on `root` itself (`last`) or on a fresh copy of it, removed
 * after: every run starts from the store as it was before the step. A root
 * not made yet (before an import) gives a copy not made yet.
 */
function onStore(root: string, last: boolean, step: WholeStep, prepare?: (copy: string) => void): Measured {
  if (last) {
    settleWriteback();
    return step(root);
  }
  const copy = `${root}-sample`;
  fs.rmSync(copy, { recursive: true, force: true });
  if (fs.existsSync(root)) {
    const cp = spawnSync("cp", ["-a", root, copy], { stdio: ["ignore", "ignore", "pipe"] });
    if (cp.status !== 0) throw new Error(`cp -a ${root} ${copy} exited ${cp.status}: ${cp.stderr?.toString("utf8") ?? ""}`);
    prepare?.(copy);
  }
  settleWriteback();
  try {
    return step(copy);
  } finally {
    fs.rmSync(copy, { recursive: true, force: true });
  }
}

/** Median seconds and median peak RSS of the runs (each taken on its own). */
function medianOf(runs: readonly Measured[]): Measured {
  const rss = runs.map((r) => r.peakRss).filter((v): v is number => v !== undefined);
  return { seconds: median(runs.map((r) => r.seconds)), peakRss: rss.length === 0 ? undefined : median(rss) };
}
