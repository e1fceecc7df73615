import type { Command } from "commander";
import { MailstoreError } from "../../shared/errors.js";
import { matchMailboxes, withStorage } from "../context.js";
import type { CliIo } from "../io.js";
import { defaultPositionFile } from "../replication.js";

export function registerReplica(program: Command, io: CliIo, stop: () => Promise<void>): void {
  program
    .command("replica")
    .description("apply a primary's JetStream stream to this location (any format), remember the position, report the lag (Ctrl-C to stop)")
    .requiredOption("--from <nats-urls>", "the JetStream cluster (nats://HOST:PORT, comma-separated)")
    .requiredOption("--storage-id <id>", "the primary's storage id (its --replicate-id)")
    .option("--position <file>", "where the replica keeps its stream position (default: <root>/mailstore-replica.json)")
    .option("--once", "stop when caught up (lag 0)")
    .option("--promote", "catch up, then make this store the primary of the storage id (fences the old primary)")
    .option("--json", "one JSON object per line: applied messages, then the final status")
    .action(async (opts: { from: string; storageId: string; position?: string; once?: boolean; promote?: boolean; json?: boolean }) => {
      const { Replica, ReplicationConnection } = await import("../../replication/index.js");
      const conn = await ReplicationConnection.open({ servers: opts.from });
      try {
        await withStorage(program, io, async (storage) => {
          const positionFile = opts.position ?? defaultPositionFile(storage);
          const replica = await Replica.start(conn, storage, {
            storageId: opts.storageId, positionFile,
            onApplied: (a) => {
              if (opts.json) io.out(JSON.stringify({ streamSeq: a.streamSeq, mailbox: a.mailbox, applied: a.result.applied, skipped: a.result.skipped, lag: a.lag, ...(a.storageEvent ? { storageEvent: a.storageEvent } : {}) }) + "\n");
            },
          });
          io.err(`replicating ${opts.storageId} from ${opts.from} into ${storage.location.root}, after stream sequence ${replica.status().appliedSeq}\n`);
          const keepAlive = setInterval(() => undefined, 1 << 30);
          try {
            if (opts.once || opts.promote) await replica.caughtUp(5 * 60_000);
            else await Promise.race([stop(), new Promise<never>((_, reject) => {
              const check = setInterval(() => {
                const failure = replica.status().error;
                if (failure) {
                  clearInterval(check);
                  reject(failure);
                }
              }, 200);
              check.unref();
            })]);
          } finally {
            clearInterval(keepAlive);
          }
          const lag = await replica.lag();
          const s = replica.status();
          if (opts.promote) {
            await replica.promote();
            io.out(opts.json ? JSON.stringify({ promoted: true, storageId: opts.storageId, positionFile }) + "\n"
              : `promoted: this store now publishes ${opts.storageId} (write with --replicate ${opts.from} --replicate-id ${opts.storageId}); the old primary is fenced\n`);
          } else {
            await replica.stop();
          }
          const line = {
            appliedSeq: s.appliedSeq, lag, appliedTransactions: s.appliedTransactions, skippedTransactions: s.skippedTransactions,
            appliedStorageEvents: s.appliedStorageEvents, skippedStorageEvents: s.skippedStorageEvents,
          };
          const events = line.appliedStorageEvents + line.skippedStorageEvents > 0 ? `, ${line.appliedStorageEvents} purges/altmoves repeated, ${line.skippedStorageEvents} skipped` : "";
          io.out(opts.json ? JSON.stringify(line) + "\n"
            : `stream sequence ${line.appliedSeq}, lag ${line.lag}, ${line.appliedTransactions} transactions applied, ${line.skippedTransactions} left out${events}\n`);
        });
      } finally {
        await conn.close();
      }
    });
}

/**
 * `seed`: publishes a seed of each mailbox (all, or those matching the
 * patterns) whose subject has no messages yet, as a writer with
 * `--replicate` would before its first commit to it. For an operator adding
 * replication to an existing store: replicas then have every mailbox, also
 * those nobody writes to. Run it while nothing else writes the store.
 */
export function registerSeed(program: Command, io: CliIo): void {
  program
    .command("seed")
    .argument("[mailboxes...]", "mailbox names or doveadm patterns (default: all)")
    .description("publish each mailbox's state (and, with no names, the subscriptions) to the stream (--replicate) when its subject has no messages yet")
    .action(async (patterns: string[]) => {
      await withStorage(program, io, async (storage, replication) => {
        if (!replication) throw new MailstoreError("INVALID_ARGUMENT", "seed publishes to the stream: give --replicate and --replicate-id");
        for (const name of matchMailboxes(await storage.listMailboxes(), patterns)) {
          const box = await storage.openMailbox(name);
          try {
            io.out(`${name}: ${(await replication.publisher.seed(box)) ? "seeded" : "its subject has messages already"}\n`);
          } finally {
            await box.close();
          }
        }
        // The subscriptions belong to the store, not to a mailbox: seeded with the whole store only.
        if (patterns.length === 0) {
          io.out(`subscriptions: ${(await replication.publisher.seedSubscriptions(storage)) ? "seeded" : "none, or their subject has messages already"}\n`);
        }
      }, { existing: true });
    });
}
