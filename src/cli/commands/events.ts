import * as fs from "node:fs";
import type { Command } from "commander";
import { decodeBundle, encodeBundle, type BundleEncoding } from "../../forensics/bundle.js";
import { exportBundle, importBundle } from "../../forensics/export.js";
import { InvalidArgumentError } from "../../shared/errors.js";
import type { CliIo } from "../io.js";
import { parsePosition } from "../position.js";
import { indexPrefixOf } from "../prefix.js";
import { makeDirs } from "../../shared/make-dirs.js";

export function registerEvents(program: Command, io: CliIo): void {
  program
    .command("export")
    .description("export a mailbox log's transactions as an event bundle (msgpack or JSON)")
    .argument("<dir>", "a mailbox index directory, dovecot.index or one of its .log files")
    .requiredOption("-o, --output <file>", "where to write the bundle ('-' = stdout)")
    .option("--format <format>", "msgpack or json", "msgpack")
    .option("--until <seq:offset>", "only transactions up to this position")
    .action((target: string, opts: { output: string; format: string; until?: string }) => {
      if (opts.format !== "msgpack" && opts.format !== "json") throw new InvalidArgumentError(`unknown bundle format ${opts.format}`);
      const bundle = exportBundle(indexPrefixOf(target), { until: opts.until ? parsePosition(opts.until) : undefined });
      const bytes = encodeBundle(bundle, opts.format as BundleEncoding);
      if (opts.output === "-") process.stdout.write(bytes);
      else fs.writeFileSync(opts.output, bytes);
      io.err(`exported ${bundle.transactions.length} transactions${bundle.checkpoint ? " and a dovecot.index checkpoint" : ""}\n`);
    });

  program
    .command("import-events")
    .description("write an event bundle as a new mailbox log (and checkpoint) in DIR")
    .argument("<bundle>", "a bundle made by `mailstore export`")
    .argument("<dir>", "an empty mailbox index directory (created if missing)")
    .action((bundlePath: string, dir: string) => {
      const bundle = decodeBundle(fs.readFileSync(bundlePath), bundlePath);
      makeDirs(dir);
      const end = importBundle(bundle, indexPrefixOf(dir));
      io.err(`imported ${bundle.transactions.length} transactions, log ends at ${end.fileSeq}:${end.offset}\n`);
    });
}
