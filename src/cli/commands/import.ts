import type { Command } from "commander";
import * as fs from "node:fs";
import * as os from "node:os";
import { MailstoreError } from "../../shared/errors.js";
import { importMailboxes, openStorage, resolveMailLocation } from "../../index.js";
import { matchMailboxes, withStorage } from "../context.js";
import type { CliIo } from "../io.js";
import { progressBar } from "../progress.js";

/**
 * `mailstore [-l TARGET] import SOURCE [patterns…]`: copies the mailboxes of
 * another mail location (any format) into the `-l` storage, bodies byte for
 * byte with flags, keywords and received dates (src/convert/import.ts). A
 * progress bar on a terminal; nothing otherwise, like `doveadm import`.
 */
export function registerImport(program: Command, io: CliIo): void {
  program
    .command("import")
    .description("copy every mailbox (or those matching patterns) of another mail location into this one")
    .argument("<source>", "source mail location, Dovecot syntax (e.g. mbox:~/mail:INBOX=/var/mail/me)")
    .argument("[patterns...]", "mailbox names or patterns (* and %)")
    .action(async (sourceLocation: string, patterns: string[]) => {
      // Checked before opening, which creates missing directories: a mistyped
      // source would otherwise be created empty and "imported".
      const { root, inbox } = resolveMailLocation(sourceLocation, { home: os.homedir(), env: io.env });
      if (!fs.existsSync(root) && !(inbox !== undefined && fs.existsSync(inbox))) {
        throw new MailstoreError("NOT_FOUND", "the source location does not exist", { path: root });
      }
      const source = openStorage(sourceLocation, { env: io.env });
      try {
        await withStorage(program, io, async (target) => {
          const mailboxes = patterns.length > 0 ? matchMailboxes(await source.listMailboxes(), patterns) : undefined;
          const bar = progressBar(io, "import");
          try {
            await importMailboxes(source, target, { ...(mailboxes ? { mailboxes } : {}), onProgress: (p) => bar.update(p.messagesDone, p.messagesTotal) });
          } finally {
            bar.stop();
          }
        });
      } finally {
        await source.close();
      }
    });
}
