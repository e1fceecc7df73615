import type { Command } from "commander";
import { noteUnindexedChanges, withStorage } from "../context.js";
import type { CliIo } from "../io.js";
import { toJson } from "../json.js";
import { parsePosition } from "../position.js";
import type { ChangeBatch } from "../../index.js";
import { MailstoreError } from "../../shared/errors.js";

export function registerWatch(program: Command, io: CliIo, stop: () => Promise<void>): void {
  program
    .command("watch")
    .description("print a mailbox's changes as they are committed, by any process (Ctrl-C to stop)")
    .option("-m, --mailbox <mailbox>", "the mailbox to watch", "INBOX")
    .option("--from <seq:offset>", "first replay what was committed after this position")
    .option("--json", "one JSON object per line per transaction")
    .option("--nats <nats-urls>", "watch through JetStream instead of the local log: commits made on any node (with --storage-id)")
    .option("--storage-id <id>", "the primary's storage id (with --nats)")
    .action(async (opts: { mailbox: string; from?: string; json?: boolean; nats?: string; storageId?: string }) => {
      const print = (batch: ChangeBatch) => {
        if (opts.json) io.out(JSON.stringify(toJson(batch)) + "\n");
        else if (batch.changes.length > 0) {
          const what = batch.changes.map((c) => JSON.stringify(toJson(c))).join(" ");
          io.out(`${batch.position.fileSeq}:${batch.position.offset} modseq=${batch.modseq} ${what}\n`);
        }
      };
      if (opts.nats) {
        if (!opts.storageId) throw new MailstoreError("INVALID_ARGUMENT", "watch --nats needs --storage-id");
        const { remoteChanges, ReplicationConnection } = await import("../../replication/index.js");
        const conn = await ReplicationConnection.open({ servers: opts.nats });
        const keepAlive = setInterval(() => undefined, 1 << 30);
        try {
          const stopped = stop();
          await new Promise<void>((resolve, reject) => {
            const from = opts.from ? parsePosition(opts.from) : undefined;
            const sub = remoteChanges(conn, { storageId: opts.storageId!, mailbox: opts.mailbox, from }).subscribe({ next: print, error: reject });
            io.err(`watching ${opts.mailbox} of ${opts.storageId} through ${opts.nats}${from ? ` from ${opts.from}` : ""} (Ctrl-C stops)\n`);
            void stopped.then(() => {
              sub.unsubscribe();
              resolve();
            });
          });
        } finally {
          clearInterval(keepAlive);
          await conn.close();
        }
        return;
      }
      await withStorage(program, io, async (storage) => {
        const box = await storage.openMailbox(opts.mailbox);
        noteUnindexedChanges(io, box);
        // The library's watch does not keep a process alive; this command must.
        const keepAlive = setInterval(() => undefined, 1 << 30);
        try {
          const stopped = stop();
          await new Promise<void>((resolve, reject) => {
            const sub = box.changes(opts.from ? parsePosition(opts.from) : undefined).subscribe({ next: print, error: reject });
            // On stderr, so that stdout stays the stream itself: from here on nothing committed is missed.
            io.err(`watching ${box.name} from ${box.position.fileSeq}:${box.position.offset} (Ctrl-C stops)\n`);
            void stopped.then(() => {
              sub.unsubscribe();
              resolve();
            });
          });
        } finally {
          clearInterval(keepAlive);
        }
      }, { readOnly: true });
    });
}
