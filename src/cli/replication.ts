/**
 * The CLI's side of replication (issue 14): the global `--replicate` options
 * that make a writing verb publish its commits, and the defaults shared by
 * `replica` and `watch --nats`.
 */
import * as path from "node:path";
import type { Command } from "commander";
import type { CommitHooks, MailboxTreeHooks, Storage, StorageHooks } from "../index.js";
import type { Outbox, Publisher, ReplicationConnection } from "../replication/index.js";
import { MailstoreError } from "../shared/errors.js";

export interface GlobalReplicationOptions {
  replicate?: string;
  replicateId?: string;
  commitMode?: string;
  outbox?: string;
  replicaPosition?: string;
}

/** Registers the global options on `program`. */
export function addReplicationOptions(program: Command): void {
  program
    .option("--replicate <nats-urls>", "publish every commit to JetStream (nats://HOST:PORT, comma-separated)")
    .option("--replicate-id <storage-id>", "the storage id of the published subjects (mail.<storage-id>.<mailbox-guid>)")
    .option("--commit-mode <mode>", "replicated (commit returns once JetStream acknowledged) or local (after the local log and a durable outbox)", "replicated")
    .option("--outbox <dir>", "local mode's outbox directory (default: <root>/mailstore-outbox)")
    .option("--replica-position <file>", "a promoted replica's position file, for its subjects (default: <root>/mailstore-replica.json)");
}

/** Where a store keeps its replica position by default: in its root (not a mailbox for dbox or Maildir; mbox needs --position). */
export function defaultPositionFile(storage: Storage): string {
  if (storage.format === "mbox") throw new MailstoreError("INVALID_ARGUMENT", "an mbox root lists every file as a mailbox: give the replica position file explicitly");
  return path.join(storage.location.root, "mailstore-replica.json");
}

export interface CliReplication {
  /** The writer publishing this process's changes (the `seed` verb publishes with it at once, in both modes). */
  publisher: Publisher;
  hooks: CommitHooks;
  /** Mailbox creates, renames and deletes: published at once (replicated mode) or through the outbox (local mode). */
  treeHooks?: MailboxTreeHooks;
  /** Purges and altmoves: published at once (local mode: once the outbox is drained). */
  storageHooks?: StorageHooks;
  /** After the storage is open (local mode drains what an earlier process left). */
  attach(storage: Storage): Promise<void>;
  /** Publishes what is left (local mode), then disconnects. */
  close(): Promise<void>;
}

/** @returns the hooks for `--replicate`, or undefined without it. */
export async function openCliReplication(program: Command, root: () => string): Promise<CliReplication | undefined> {
  const o = program.opts() as GlobalReplicationOptions;
  if (!o.replicate) return undefined;
  if (!o.replicateId) throw new MailstoreError("INVALID_ARGUMENT", "--replicate needs --replicate-id");
  if (o.commitMode !== "replicated" && o.commitMode !== "local") throw new MailstoreError("INVALID_ARGUMENT", `--commit-mode ${o.commitMode}: replicated or local`);
  // On demand: the NATS client is loaded only by a process that replicates.
  const { Outbox, promotedPublisher, replicatedCommitHooks, replicatedStorageHooks, replicatedTreeHooks, ReplicationConnection } = await import("../replication/index.js");
  const conn = await ReplicationConnection.open({ servers: o.replicate });
  try {
    const publisher = promotedPublisher(conn, o.replicaPosition ?? path.join(root(), "mailstore-replica.json"), o.replicateId);
    if (o.commitMode === "replicated") {
      return {
        // No log watch per open mailbox (followExternal): the process ends with its verb, whose commits publish the log up to its end, others' appends included.
        publisher, hooks: replicatedCommitHooks(publisher, { followExternal: false }), treeHooks: replicatedTreeHooks(publisher), storageHooks: replicatedStorageHooks(publisher),
        attach: async () => undefined, close: () => conn.close(),
      };
    }
    // No log watch per open mailbox either (see the replicated mode above): the outbox marks each commit's log to its end.
    return localModeReplication(conn, publisher, new Outbox(publisher, o.outbox ?? path.join(root(), "mailstore-outbox"), { followExternal: false }));
  } catch (err) {
    // An open connection would keep the process from exiting (an outbox directory it may not create, say).
    await conn.close();
    throw err;
  }
}

/** Local mode: the outbox's hooks; what is left is published before the process exits. */
function localModeReplication(conn: ReplicationConnection, publisher: Publisher, outbox: Outbox): CliReplication {
  return {
    publisher,
    hooks: outbox.hooks,
    treeHooks: outbox.treeHooks,
    storageHooks: outbox.storageHooks,
    attach: (storage) => outbox.attach(storage),
    close: async () => {
      try {
        await outbox.flush(10_000);
      } finally {
        await outbox.close();
        await conn.close();
      }
    },
  };
}
