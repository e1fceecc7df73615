import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fmt } from "../util.js";
import { DoveadmRunner, measureMailstore, measureNoops, workRatio, writeSampleMbox, type Measured } from "../dovecot.js";
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
 * (`mailbox status messages Empty` on an empty mailbox, median of 5) is
 * subtracted from its times first. Peak RSS is GNU time(1)'s, when installed.
 */
export interface VsDovecotOptions {
  readonly sizes: readonly number[];
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
    const noop = measureNoops(dovecot, (dir) => `mdbox:${dir}`);
    const rows = [
      "",
      `No-op (\`mailbox status messages Empty\` on an empty mailbox, median of 5): doveadm ${fmt(noop.doveadm)} s, mailstore ${fmt(noop.engine)} s, \`node -e 0\` ${fmt(noop.node)} s: the engine's no-op is ${fmt(noop.engine / noop.node)}× \`node -e 0\`.`,
      "",
      "| messages | step | doveadm s | engine s (whole process) | engine s (embedded) | work ratio, whole process (no-ops subtracted) | ratio, embedded | peak RSS doveadm | peak RSS engine |",
      "|---|---|---|---|---|---|---|---|---|",
    ];
    for (const size of opts.sizes) {
      for (const t of await runSize(dovecot, size)) {
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
async function runSize(dovecot: DoveadmRunner, count: number): Promise<StepTimes[]> {
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
  const dl = `mdbox:${dovecotRoot}`;
  const el = `mdbox:${engineRoot}`;
  const half = Math.floor(count / 2);
  const embedded = new EmbeddedSteps(`mdbox:${embeddedRoot}`, source, half);
  const oneUid = String(half + 1);
  const both = (args: string[]): [() => Measured, () => Measured] => [() => dovecot.measure(dl, args), () => measureMailstore(["-l", el, ...args])];
  const steps: Array<[string, [() => Measured, () => Measured], () => Promise<number>]> = [
    [`import (${fmt(bytes / 1e6)} MB mbox)`, [() => dovecot.measure(dl, ["import", source, "", "all"]), () => measureMailstore(["-l", el, "import", source])], () => embedded.import()],
    ["fetch text all", both(["fetch", "text", "mailbox", "INBOX", "all"]), () => embedded.fetchAll()],
    ["flag all \\Seen", both(["flags", "add", "\\Seen", "mailbox", "INBOX", "all"]), () => embedded.flagAll()],
    [`flag one (uid ${oneUid} \\Flagged)`, both(["flags", "add", "\\Flagged", "mailbox", "INBOX", "uid", oneUid]), () => embedded.flagOne(half + 1)],
    [`expunge half (uid 1:${half})`, both(["expunge", "mailbox", "INBOX", "uid", `1:${half}`]), () => embedded.expungeHalf()],
    ["purge", both(["purge"]), () => embedded.purge()],
    ["reopen (mailbox status)", both(["mailbox", "status", "messages uidnext highestmodseq", "INBOX"]), () => embedded.reopen()],
    ["rebuild after index loss (force-resync)", [
      () => { dropIndexes(dovecotRoot); return dovecot.measure(dl, ["force-resync", "*"]); },
      () => { dropIndexes(engineRoot); return measureMailstore(["-l", el, "force-resync", "*"]); },
    ], () => { dropIndexes(embeddedRoot); return embedded.rebuild(); }],
  ];
  const out: StepTimes[] = [];
  try {
    for (const [step, [theirs, ours], inProcess] of steps) {
      const doveadm = theirs();
      const engine = ours();
      out.push({ step, doveadm, engine, embedded: await inProcess() });
    }
  } finally {
    await embedded.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
  return out;
}
