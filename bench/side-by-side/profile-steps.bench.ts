import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Session, type Profiler } from "node:inspector/promises";
import { fmt } from "../util.js";
import { writeSampleMbox } from "../dovecot.js";
import { dropIndexes, EmbeddedSteps } from "./embedded-steps.js";

/**
 * `profile-steps`: the embedded steps of vs-dovecot, each under V8's
 * sampling profiler (200 µs), at each size asked for. One row per step: its
 * time and the functions with the most self time, for RESULTS.md's profile
 * summaries. Times here include the profiler's overhead: compare them with
 * each other, not with vs-dovecot's.
 */
export async function profileStepsBench(opts: { sizes: readonly number[]; top?: number }): Promise<string[]> {
  const rows = ["", "| messages | step | s (profiled) | top self time |", "|---|---|---|---|"];
  for (const size of opts.sizes) {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-profile-"));
    const session = new Session();
    session.connect();
    try {
      fs.mkdirSync(path.join(work, "src", "mail"), { recursive: true });
      const inbox = path.join(work, "src", "inbox");
      writeSampleMbox(inbox, size, 2250);
      const steps = new EmbeddedSteps(`mdbox:${work}/store`, `mbox:${work}/src/mail:INBOX=${inbox}`, size / 2);
      await session.post("Profiler.enable");
      await session.post("Profiler.setSamplingInterval", { interval: 200 });
      const plan: Array<[string, () => Promise<number>]> = [
        ["import", () => steps.import()],
        ["fetch text all", () => steps.fetchAll()],
        ["flag all", () => steps.flagAll()],
        ["flag one", () => steps.flagOne(size / 2 + 1)],
        ["expunge half", () => steps.expungeHalf()],
        ["purge", () => steps.purge()],
        ["reopen", () => steps.reopen()],
        // After index loss, as vs-dovecot times it (the indexes dropped before the profiler starts).
        ["rebuild after index loss", () => steps.rebuild()],
      ];
      for (const [name, run] of plan) {
        if (name.startsWith("rebuild")) dropIndexes(`${work}/store`);
        await session.post("Profiler.start");
        const seconds = await run();
        const { profile } = await session.post("Profiler.stop");
        rows.push(`| ${size.toLocaleString("en")} | ${name} | ${fmt(seconds)} | ${topSelfTime(profile, opts.top ?? 6)} |`);
      }
    } finally {
      session.disconnect();
      fs.rmSync(work, { recursive: true, force: true });
    }
  }
  return rows;
}

/** "name file:line share%" of the `top` functions with the most samples of their own. */
export function topSelfTime(profile: Profiler.Profile, top: number): string {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  for (const id of profile.samples ?? []) {
    const frame = nodes.get(id)!.callFrame;
    const key = `${frame.functionName || "(anonymous)"}${frame.url ? ` ${path.basename(frame.url)}:${frame.lineNumber + 1}` : ""}`;
    self.set(key, (self.get(key) ?? 0) + 1);
  }
  const total = profile.samples?.length ?? 0;
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, n]) => `${k} ${((100 * n) / total).toFixed(1)}%`).join("; ");
}
