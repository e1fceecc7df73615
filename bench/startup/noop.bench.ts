import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fmt, median } from "../util.js";
import { measureMailstore, runMeasured } from "../dovecot.js";

/**
 * Issue #11 goal 2 (`noop-startup`): the no-op `mailbox status messages INBOX`
 * on an empty mdbox, a whole `mailstore` process (bin/mailstore.js), against
 * `node -e 0`: wall clock, RUNS of each. The commands run in turn (A B A B …)
 * and the ratio is taken pair by pair: when another job slows the machine
 * down for a while, both sides of a pair are slowed.
 * `otherBin`: another checkout's bin/mailstore.js, run in the same turns
 * (before and after a change, on one machine at one time).
 */
export function noopStartupBench(opts: { otherBin?: string } = {}): string[] {
  const RUNS = 41;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-bench-startup-"));
  try {
    const args = ["-l", `mdbox:${work}/mail`, "mailbox", "status", "messages", "INBOX"];
    measureMailstore(["-l", `mdbox:${work}/mail`, "mailbox", "create", "INBOX"]);
    const other = opts.otherBin;
    const runOther = other === undefined ? undefined : () => runMeasured(process.execPath, [other, ...args], { env: { ...process.env, MAIL: "" } }).seconds;
    const ours: number[] = [];
    const theirs: number[] = [];
    const node: number[] = [];
    // One of each first, not counted: the page cache and the code cache are warm for all.
    for (let i = 0; i <= RUNS; i++) {
      const a = measureMailstore(args).seconds;
      const b = runOther?.();
      const n = runMeasured(process.execPath, ["-e", "0"]).seconds;
      if (i === 0) continue;
      ours.push(a);
      if (b !== undefined) theirs.push(b);
      node.push(n);
    }
    const row = (name: string, xs: number[]) =>
      `| no-op start-up: ${name} (\`mailbox status messages INBOX\`, empty mdbox, median of ${RUNS}) | ${fmt(median(xs))} s (min ${fmt(Math.min(...xs))} s) | \`node -e 0\` ${fmt(median(node))} s | ${fmt(median(xs.map((x, i) => x / node[i])))}× \`node -e 0\` (median of the pairs' ratios) |`;
    return [row("mailstore", ours), ...(other === undefined ? [] : [row(other, theirs)])];
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
