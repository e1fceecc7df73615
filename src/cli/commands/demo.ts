import * as path from "node:path";
import type { Command } from "commander";
import { readLog, type ChangeBatch, type IndexMapState } from "../../index.js";
import { MailstoreError } from "../../shared/errors.js";
import { withStorage } from "../context.js";
import { demoMessages } from "../demo-messages.js";
import type { CliIo } from "../io.js";
import { transactionLine } from "../log-format.js";
import { messageLine, stateJson } from "../state-format.js";

/**
 * The main job: shows the engine working on its default location in a
 * minute. Imports a sample mailbox, subscribes to INBOX's change stream,
 * makes the changes an IMAP client would, and prints the stream, the log
 * those changes became and the state replayed from it.
 */
/**
 * Without -l the demo writes to ./mail, whatever $MAIL says: login shells set
 * $MAIL to the user's real spool (/var/mail/$USER), which is no place for
 * sample messages.
 */
function demoLocation(): string {
  return `mdbox:${path.resolve("mail")}`;
}

/** The state as a mail client would describe it, and why untouched messages show the highest modseq. */
function stateSummary(state: IndexMapState): string {
  const j = stateJson(state) as { position: { fileSeq: number; offset: number }; header: Record<string, number | string>; messages: Array<{ uid: number; flags: string[]; keywords: string[]; modseq: number }> };
  const h = j.header;
  const lines = [
    `log position ${j.position.fileSeq}:${j.position.offset}`,
    `UIDVALIDITY ${h.uidValidity}, UIDNEXT ${h.nextUid}, ${h.messagesCount} messages (${h.seenMessagesCount} seen, ${h.deletedMessagesCount} deleted), HIGHESTMODSEQ ${h.highestModseq}`,
  ];
  for (const m of j.messages) lines.push(messageLine(m));
  if (j.messages.length > 1 && j.messages.every((m) => String(m.modseq) === String(h.highestModseq))) {
    lines.push("(every message shows HIGHESTMODSEQ: per-message modseqs are kept once a client enables CONDSTORE, as in Dovecot)");
  }
  return lines.join("\n") + "\n";
}

export function registerDemo(program: Command, io: CliIo): void {
  program
    .command("demo")
    .description("import a sample mailbox into the location, change it, and show the change stream, the log and the replayed state")
    .action(async () => {
      await withStorage(program, io, async (storage) => {
        io.out(`Location: ${storage.location.driver}:${storage.location.root}\n`);
        io.out("Every change is a transaction appended to dovecot.index.log (Dovecot's own format);\n");
        io.out("the change stream, the mailbox state and dovecot.index are all derived from that log.\n\n");
        const inbox = await storage.openMailbox("INBOX");
        const before = inbox.position;
        const seen: ChangeBatch[] = [];
        const sub = inbox.changes().subscribe((batch) => seen.push(batch));

        io.out("1. Importing a sample mailbox (one transaction) ...\n");
        const tx = inbox.transaction();
        for (const m of demoMessages()) tx.append(m);
        const imported = await tx.commit();
        io.out(`   UIDs ${imported.appendedUids.join(",")} at log ${imported.start.fileSeq}:${imported.start.offset}..${imported.end.offset}, modseq ${imported.modseq}\n`);
        const [a, b, c] = imported.appendedUids;

        io.out("2. A client reads two messages, flags one, labels one, deletes one, copies one to Archive ...\n");
        await inbox.transaction().flags([{ uid1: a, uid2: b }], "add", ["\\Seen"]).commit();
        await inbox.transaction().flags([{ uid1: b, uid2: b }], "add", ["\\Flagged", "$Label1"]).commit();
        await inbox.transaction().expunge([{ uid1: c, uid2: c }]).commit();
        try {
          await storage.createMailbox("Archive");
        } catch (err) {
          if (!(err instanceof MailstoreError && err.code === "ALREADY_EXISTS")) throw err;
        }
        const archive = await storage.openMailbox("Archive");
        const copied = await inbox.transaction().copyTo(archive, [{ uid1: a, uid2: a }]);
        await new Promise((resolve) => setTimeout(resolve, 20)); // change batches arrive on the next tick
        sub.unsubscribe();

        io.out("\n3. What a subscriber (an IDLE-ing IMAP session) received:\n");
        for (const batch of seen) {
          for (const ch of batch.changes) io.out(`   modseq ${batch.modseq}: ${JSON.stringify(ch)}\n`);
        }

        io.out("\n4. The transaction log those changes became (dovecot.index.log, readable by Dovecot):\n");
        for (const t of readLog(inbox.indexPrefix, before).transactions) io.out(`   ${transactionLine(t)}\n`);

        io.out("\n5. The INBOX state, replayed from the log (`mailstore replay` shows every index header field):\n");
        io.out(stateSummary(await inbox.refresh()).replace(/^/gm, "   "));
        io.out(`\n6. Archive got INBOX uid ${a} as its uid ${copied.appendedUids.join(",")} (a transaction in Archive's own log).\n`);
        io.out(`\nTry: npx mailstore log ${inbox.indexPrefix.replace(/\/dovecot\.index$/, "")}\n`);
        io.out(`     npx mailstore -l ${storage.location.driver}:${storage.location.root} fetch --json 'uid flags guid' mailbox INBOX all\n`);
      }, { fallbackLocation: demoLocation() });
    });
}
