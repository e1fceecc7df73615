import type { Command } from "commander";
import { readDovecotFile } from "../../forensics/dump.js";
import { logDumpJson, logDumpText } from "../log-dump-format.js";
import { indexDumpJson, indexDumpText } from "../index-dump-format.js";
import type { CliIo } from "../io.js";

export function registerDump(program: Command, io: CliIo): void {
  program
    .command("dump")
    .description("show a Dovecot index file record by record, as doveadm dump does: logs (dovecot.index.log, .log.2, dovecot.map.index.log) and indexes (dovecot.index, dovecot.map.index)")
    .argument("<file>", "the file to dump")
    .option("--json", "print JSON: {header, records: [{offset, type, external, size, modseq, …}]}")
    .action((file: string, opts: { json?: boolean }) => {
      const read = readDovecotFile(file);
      if (read.kind === "index") io.out(opts.json ? JSON.stringify(indexDumpJson(read.state), null, 2) + "\n" : indexDumpText(read.state));
      else io.out(opts.json ? JSON.stringify(logDumpJson(read.log), null, 2) + "\n" : logDumpText(read.log));
    });
}
