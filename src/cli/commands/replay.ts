import type { Command } from "commander";
import { loadState, stateAt } from "../../index.js";
import { diffStates } from "../../forensics/state-diff.js";
import type { CliIo } from "../io.js";
import { toJson } from "../json.js";
import { parsePosition } from "../position.js";
import { indexPrefixOf } from "../prefix.js";
import { stateJson, stateText } from "../state-format.js";
import { progressBar } from "../progress.js";

export function registerReplay(program: Command, io: CliIo): void {
  program
    .command("replay")
    .description("the state a mailbox's dovecot.index* files describe, at the end of the log or at a position")
    .argument("<dir>", "a mailbox index directory (or dovecot.index / its .log)")
    .option("--until <seq:offset>", "the state just after the transaction ending here")
    .option("--json", "print {position, header, keywords, extensions, messages}")
    .action((target: string, opts: { until?: string; json?: boolean }) => {
      const prefix = indexPrefixOf(target);
      const bar = progressBar(io, "replaying");
      const state = opts.until ? stateAt(prefix, parsePosition(opts.until)) : loadState(prefix, { onProgress: bar.update });
      bar.stop();
      io.out(opts.json ? JSON.stringify(stateJson(state), null, 1) + "\n" : stateText(state));
    });

  program
    .command("diff")
    .description("what changed in a mailbox between two log positions")
    .argument("<dir>", "a mailbox index directory")
    .argument("<from>", "SEQ:OFFSET")
    .argument("[to]", "SEQ:OFFSET (default: the end of the log)")
    .option("--json", "print JSON")
    .action((target: string, from: string, to: string | undefined, opts: { json?: boolean }) => {
      const prefix = indexPrefixOf(target);
      const diff = diffStates(stateAt(prefix, parsePosition(from)), to ? stateAt(prefix, parsePosition(to)) : loadState(prefix));
      if (opts.json) {
        io.out(JSON.stringify(toJson(diff)) + "\n");
        return;
      }
      if (diff.appended.length) io.out(`appended ${diff.appended.join(",")}\n`);
      if (diff.expunged.length) io.out(`expunged ${diff.expunged.join(",")}\n`);
      for (const c of diff.changed) {
        const parts = [];
        if (c.flags) parts.push(`flags ${c.flags.before.join(" ") || "()"} -> ${c.flags.after.join(" ") || "()"}`);
        if (c.keywords) parts.push(`keywords ${c.keywords.before.join(" ") || "()"} -> ${c.keywords.after.join(" ") || "()"}`);
        if (c.modseq) parts.push(`modseq ${c.modseq.before} -> ${c.modseq.after}`);
        io.out(`uid ${c.uid}: ${parts.join("; ")}\n`);
      }
      for (const [k, v] of Object.entries(diff.header)) io.out(`${k}: ${v.before} -> ${v.after}\n`);
    });
}
