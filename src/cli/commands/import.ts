import type { Command } from "commander";
import * as fs from "node:fs";
import * as os from "node:os";
import { MailstoreError } from "../../shared/errors.js";
import { importMailboxes, openStorage, resolveMailLocation, type ImportedMailbox } from "../../index.js";
import { matchMailboxes, withStorage } from "../context.js";
import type { CliIo } from "../io.js";
import { progressBar } from "../progress.js";
import { boundImportHeap } from "../import-heap.js";

/**
 * `mailstore [-l TARGET] import SOURCE [patterns…]`: copies the mailboxes of
 * another mail location (any format) into the `-l` storage, bodies byte for
 * byte with flags, keywords and received dates, keeping UIDVALIDITY and UIDs
 * where the target mailbox is new or empty, and skipping messages it already
 * has (src/convert/import.ts). A progress bar on a terminal; then one summary
 * line per mailbox.
 */
export function registerImport(program: Command, io: CliIo): void {
  program
    .command("import")
    .description("copy every mailbox (or those matching patterns) of another mail location into this one")
    .argument("<source>", "source mail location, Dovecot syntax (e.g. mbox:~/mail:INBOX=/var/mail/me)")
    .argument("[patterns...]", "mailbox names or patterns (* and %)")
    .addHelpText("after", IMPORT_HELP)
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
          const names = mailboxes ?? (await source.listMailboxes());
          const heap = boundImportHeap({ unindexedSource: (await Promise.all(names.map((n) => source.hasIndex(n)))).includes(false) });
          let imported: ImportedMailbox[];
          try {
            imported = await importMailboxes(source, target, {
              ...(mailboxes ? { mailboxes } : {}),
              onProgress: (p) => {
                heap.check();
                bar.update(p.messagesDone, p.messagesTotal);
              },
            });
          } finally {
            heap.restore();
            bar.stop();
          }
          for (const m of imported) io.out(`${importSummaryLine(m)}\n`);
        });
      } finally {
        await source.close();
      }
    });
}

const IMPORT_HELP = `
UIDs: a target mailbox that is new or has no messages gets the source's
UIDVALIDITY, every message keeps its UID (gaps included) and UIDNEXT is the
source's, as dsync does. A target mailbox that already has messages keeps its
UIDVALIDITY; the messages copied into it keep their UIDs only if it shares the
source's UIDVALIDITY (an earlier import) and the UIDs are still free, and get
new UIDs otherwise. The summary line says which, and why.

Running it again copies nothing twice: a source message the target mailbox
already has is skipped and counted. It is recognised by its GUID when the
target keeps GUIDs (sdbox, mdbox, Maildir; an mbox source's GUID is its header
MD5, which they keep as well), and by its content (SHA-256 of the message,
CRLF read as LF) when the target is mbox, which cannot keep GUIDs, or the
message has no GUID (an mbox message without the headers its MD5 covers).
Identical messages are counted: two in the source need two in the target.

Prints one line per mailbox: messages copied, bytes, messages skipped, UIDs
kept or renumbered, UIDVALIDITY kept or not.`;

/** One mailbox's outcome, e.g. `INBOX: 4 messages (1234 bytes), 0 skipped (already there), UIDs kept, UIDVALIDITY 1700000000 kept`. */
export function importSummaryLine(m: ImportedMailbox): string {
  const uids = m.uidsKept ? "UIDs kept" : `UIDs renumbered (${m.renumberedBecause ?? "the target could not take them"})`;
  const validity = m.uidValidityKept
    ? `UIDVALIDITY ${m.sourceUidValidity} kept`
    : `UIDVALIDITY not kept (source ${m.sourceUidValidity}, target ${m.targetUidValidity})`;
  return `${m.name}: ${m.messages} message${m.messages === 1 ? "" : "s"} (${m.bytes} bytes), ${m.skipped} skipped (already there), ${uids}, ${validity}`;
}
