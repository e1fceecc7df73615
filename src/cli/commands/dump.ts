import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { parseLogBytes } from "../../log/file.js";
import { logDumpJson, logDumpText } from "../log-dump-format.js";
import { indexDumpJson, indexDumpText } from "../index-dump-format.js";
import { decodeIndexFile } from "../../projections/index-file.js";
import { INDEX_MAJOR_VERSION } from "../../projections/base-header.js";
import type { CliIo } from "../io.js";

export function registerDump(program: Command, io: CliIo): void {
  program
    .command("dump")
    .description("show a Dovecot index file record by record, as doveadm dump does: logs (dovecot.index.log, .log.2, dovecot.map.index.log) and indexes (dovecot.index, dovecot.map.index)")
    .argument("<file>", "the file to dump")
    .option("--json", "print JSON: {header, records: [{offset, type, external, size, modseq, …}]}")
    .action((file: string, opts: { json?: boolean }) => {
      const bytes = readFileSync(file);
      // A log starts with major version 1, an index (dovecot.index, .map.index, .list.index) with 7.
      if (bytes[0] === INDEX_MAJOR_VERSION) {
        const state = decodeIndexFile(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file);
        io.out(opts.json ? JSON.stringify(indexDumpJson(state), null, 2) + "\n" : indexDumpText(state));
        return;
      }
      const parsed = parseLogBytes(bytes, file);
      io.out(opts.json ? JSON.stringify(logDumpJson(parsed), null, 2) + "\n" : logDumpText(parsed));
    });
}
