import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DoveadmRunner, measureNoops, settleWriteback, timeMailstore, workRatio, writeSampleMbox } from "../dovecot.js";
import { fmt, median, versusDovecot } from "../util.js";

/**
 * Converting an mbox (as an MDA leaves it: From_ lines, no Dovecot headers)
 * into another format, whole processes side by side: `doveadm import`
 * against `mailstore import` (src/convert), each from its own copy of the
 * source and into an empty target. Also the whole-process work ratio:
 * each tool's no-op (`mailbox status` of an empty mailbox of the target
 * format) subtracted first. Times are medians of `rounds` runs per tool,
 * the tools in turns (the order flipped each round), each into a fresh
 * target after a sync(1): one run each, right after other benchmarks' big
 * writes, measured their writeback more than the import.
 * @returns markdown table rows.
 */
export async function mboxConvertBench(format = "maildir", count = 20_000, messageBytes = 2250, rounds = 3): Promise<string[]> {
  const label = `mbox → ${format}: import ${count.toLocaleString("en")} messages`;
  if (!DoveadmRunner.available()) return [`| ${label} | (needs doveadm and root) | | |`];
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-bench-mbox-convert-"));
  fs.chmodSync(work, 0o755);
  const dovecot = new DoveadmRunner();
  try {
    const sides = ["dovecot", "engine"].map((side) => {
      const src = path.join(work, side, "src");
      fs.mkdirSync(path.join(src, "mail"), { recursive: true });
      const dst = path.join(work, side, "dst");
      return { source: `mbox:${src}/mail:INBOX=${src}/inbox`, inbox: path.join(src, "inbox"), target: `${format}:${dst}`, dst };
    });
    const pristine = path.join(work, "inbox");
    const bytes = writeSampleMbox(pristine, count, messageBytes);
    const runs: Array<() => number> = [
      () => dovecot.run(sides[0].target, ["import", sides[0].source, "", "all"]),
      () => timeMailstore(["-l", sides[1].target, "import", sides[1].source]),
    ];
    const times: number[][] = [[], []];
    for (let round = 0; round < rounds; round++) {
      for (const side of round % 2 === 0 ? [0, 1] : [1, 0]) {
        // Each run from the source as it was made: a tool may leave an index of it behind.
        const src = path.dirname(sides[side].inbox);
        fs.rmSync(src, { recursive: true, force: true });
        fs.mkdirSync(path.join(src, "mail"), { recursive: true });
        fs.copyFileSync(pristine, sides[side].inbox);
        fs.rmSync(sides[side].dst, { recursive: true, force: true });
        if (side === 0) {
          fs.mkdirSync(sides[0].dst);
          dovecot.chown(path.join(work, "dovecot"));
        }
        settleWriteback();
        times[side].push(runs[side]());
      }
    }
    const [d, e] = times.map(median);
    const noop = measureNoops(dovecot, (dir) => `${format}:${dir}`);
    return [`| ${label} (${fmt(bytes / 1e6)} MB mbox) | engine ${fmt(e)} s | Dovecot ${fmt(d)} s | ${versusDovecot(e, d)}; work ratio (no-ops ${fmt(noop.engine)} / ${fmt(noop.doveadm)} s subtracted) ${fmt(workRatio(e, d, noop))}× (medians of ${rounds}) |`];
  } finally {
    dovecot.cleanup();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** The workload: a 20,000-message, 45 MB mbox imported into mdbox. */
export function mboxToMdboxBench(): Promise<string[]> {
  return mboxConvertBench("mdbox", 20_000, 2250);
}
