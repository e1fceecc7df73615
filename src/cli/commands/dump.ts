import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { parseLogBytes } from "../../log/file.js";
import { logDumpJson, logDumpText } from "../log-dump-format.js";
import type { CliIo } from "../io.js";

export function registerDump(program: Command, io: CliIo): void {
  program
    .command("dump")
    .description("show a Dovecot index file (dovecot.index.log, .log.2, …) record by record, as doveadm dump does")
    .argument("<file>", "the file to dump")
    .option("--json", "print JSON: {header, records: [{offset, type, external, size, modseq, …}]}")
    .action((file: string, opts: { json?: boolean }) => {
      const parsed = parseLogBytes(readFileSync(file), file);
      io.out(opts.json ? JSON.stringify(logDumpJson(parsed), null, 2) + "\n" : logDumpText(parsed));
    });
}
