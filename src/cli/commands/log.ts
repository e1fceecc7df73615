import type { Command } from "commander";
import { readLog } from "../../index.js";
import type { CliIo } from "../io.js";
import { transactionJson, transactionLine } from "../log-format.js";
import { parsePosition } from "../position.js";
import { indexPrefixOf } from "../prefix.js";

export function registerLog(program: Command, io: CliIo): void {
  program
    .command("log")
    .description("list every transaction of a mailbox log (.log.2 then .log): position, modseq, what changed")
    .argument("<dir>", "a mailbox index directory, dovecot.index or one of its .log files")
    .option("--from <seq:offset>", "start at this position")
    .option("--json", "one JSON object per transaction per line")
    .action((target: string, opts: { from?: string; json?: boolean }) => {
      const read = readLog(indexPrefixOf(target), opts.from ? parsePosition(opts.from) : undefined);
      for (const tx of read.transactions) {
        io.out((opts.json ? JSON.stringify(transactionJson(tx)) : transactionLine(tx)) + "\n");
      }
      if (!opts.json) io.out(`end ${read.end.fileSeq}:${read.end.offset} modseq=${read.endModseq}\n`);
    });
}
