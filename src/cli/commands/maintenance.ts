import type { Command } from "commander";
import { withStorage } from "../context.js";
import type { CliIo } from "../io.js";
import { forEachMatch } from "../match.js";
import { parseQuery } from "../query.js";

/** Storage maintenance verbs: purge, altmove, force-resync, deleted-message access. */
export function registerMaintenance(program: Command, io: CliIo): void {
  program
    .command("purge")
    .description("mdbox: rewrite storage files to drop expunged messages (no-op for other formats)")
    .action(() => withStorage(program, io, (storage) => storage.purge(), { existing: true }));

  program
    .command("altmove")
    .description("move the messages matching QUERY to the alternate storage")
    .option("-r, --reverse", "move them back to the primary storage")
    .argument("<query...>")
    .action((queryArgs: string[], opts: { reverse?: boolean }) => withStorage(program, io, (storage) =>
      forEachMatch(storage, parseQuery(queryArgs), async (box, uids) => {
        if (uids.length > 0) await storage.altMove(box.name, uids, !opts.reverse);
      }), { existing: true }));

  program
    .command("force-resync")
    .description("rebuild indexes from the mail files (\"*\" = every mailbox)")
    .argument("<mailbox>")
    .action((mailbox: string) => withStorage(program, io, (storage) => storage.forceResync(mailbox), { existing: true }));

  const deleted = program.command("deleted").description("mdbox: expunged messages whose bodies are not purged yet");
  deleted
    .command("list")
    .option("--json", "print JSON")
    .action((opts: { json?: boolean }) => withStorage(program, io, async (storage) => {
      const list = await storage.deletedMessages();
      if (opts.json) io.out(JSON.stringify(list) + "\n");
      else {
        // Headed columns: the map uid is what `deleted recover` takes.
        if (list.length > 0) io.out("map-uid\tguid\torig-mailbox\tbody-bytes\n");
        for (const m of list) io.out(`${m.mapUid}\t${m.guid}\t${m.origMailbox ?? ""}\t${m.bodySizeBytes}\n`);
      }
    }, { readOnly: true }));
  deleted
    .command("recover")
    .argument("<map-uid>", "as printed by `deleted list`")
    .option("-m, --mailbox <mailbox>", "where to put it (default: the mailbox it was saved to)")
    .action((mapUid: string, opts: { mailbox?: string }) => withStorage(program, io, async (storage) => {
      const r = await storage.recoverDeleted(Number(mapUid), opts.mailbox);
      io.out(`${r.mailbox} uid ${r.uid}\n`);
    }, { existing: true }));
}
