import * as fs from "node:fs";
import * as path from "node:path";

/** One failure: what broke, where, and the command that replays it alone. */
export interface Failure {
  readonly kind: string;
  readonly where: string;
  readonly message: string;
  /** Seed of the failing round or input. */
  readonly seed: number;
  readonly replay: string;
}

/** What a campaign hands back: a table, a one-line figure and its failures. */
export interface CampaignReport {
  readonly campaign: "crash" | "concurrency" | "fuzz";
  /** The run's seed: `--seed` with it replays the whole run. */
  readonly seed: number;
  readonly columns: readonly string[];
  readonly rows: ReadonlyArray<ReadonlyArray<string | number>>;
  /** One line, e.g. "crash: 412 rounds, 0 losses". */
  readonly figure: string;
  readonly failures: readonly Failure[];
  readonly durationMs: number;
}

/** The table as markdown lines. */
export function markdownTable(report: Pick<CampaignReport, "columns" | "rows">): string[] {
  return [
    `| ${report.columns.join(" | ")} |`,
    `|${report.columns.map(() => "---").join("|")}|`,
    ...report.rows.map((r) => `| ${r.join(" | ")} |`),
  ];
}

/** Prints the report (table, failures with their replay commands, the figure last) through `print`. */
export function printReport(report: CampaignReport, print: (line: string) => void): void {
  for (const line of markdownTable(report)) print(line);
  for (const f of report.failures) print(`FAILURE ${f.kind} at ${f.where} (seed ${f.seed}): ${f.message.split("\n")[0]}\n  replay: ${f.replay}`);
  print(`seed ${report.seed}; ${(report.durationMs / 1000).toFixed(0)} s`);
  print(report.figure);
}

/**
 * Writes the report as JSON to `dir`/<campaign>-<date>-seed<S>.json.
 * @returns the file's path.
 */
export function writeReport(report: CampaignReport, dir: string, argv: readonly string[]): string {
  fs.mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const file = path.join(dir, `${report.campaign}-${stamp}-seed${report.seed}.json`);
  fs.writeFileSync(file, JSON.stringify({ ...report, command: ["npm run campaign --", ...argv].join(" "), date: new Date().toISOString() }, null, 1) + "\n");
  return file;
}
