/**
 * A smoke run of issue #11's side-by-side benchmark (`npm run bench --
 * vs-dovecot`) on 200 messages, so that it cannot rot: every step runs on
 * doveadm, on the mailstore CLI and embedded, and the table has a number in
 * every cell. No timing is asserted (machines are noisy).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { expect, it } from "vitest";
import { describeInterop } from "../helpers/dovecot.js";

const REPO = path.resolve(__dirname, "../..");
const STEPS = ["import", "fetch text all", "flag all", "flag one", "expunge half", "purge", "reopen", "rebuild"];

describeInterop("vs-dovecot benchmark (smoke)", () => {
  it("prints one row per step with times, ratios and peak RSS for both tools", () => {
    const runner = path.join(REPO, "dist/bench/run.js");
    expect(fs.existsSync(runner), "run `npm run build` first").toBe(true);
    const r = spawnSync(process.execPath, ["--expose-gc", runner, "vs-dovecot", "--sizes", "200"], { encoding: "utf8", timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/No-op .*doveadm [\d.]+ s, mailstore [\d.]+ s, `node -e 0` [\d.]+ s/);
    const rows = r.stdout.split("\n").filter((l) => l.startsWith("| 200 |")).map((l) => l.split("|").slice(1, -1).map((c) => c.trim()));
    expect(rows.map((cells) => STEPS.find((s) => cells[1].startsWith(s)))).toEqual(STEPS);
    for (const cells of rows) {
      for (const number of cells.slice(2, 7)) expect(Number(number), `${cells[1]}: ${number}`).toBeGreaterThanOrEqual(0);
      const rss = cells.slice(7).join(" ");
      expect(rss, cells[1]).toMatch(fs.existsSync("/usr/bin/time") ? /^[\d.]+ MiB [\d.]+ MiB$/ : /^n\/a n\/a$/);
    }
  }, 150_000);
});
