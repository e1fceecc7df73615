import * as path from "node:path";
import type { Command } from "commander";
import * as os from "node:os";
import { openStorage, resolveMailLocation, type Mailbox, type Storage } from "../index.js";
import type { CliIo } from "./io.js";
import { openCliReplication, type CliReplication } from "./replication.js";
import { MailstoreError } from "../shared/errors.js";

/** The embedded default location: mdbox under ./mail (unless -l or $MAIL say otherwise). */
export function defaultLocation(env: CliIo["env"]): string {
  return env.MAIL ? "" : `mdbox:${path.resolve("mail")}`;
}

/**
 * Opens the storage named by the global `-l` option, runs `fn`, closes it.
 * `existing`: the verb works on mail that is there (flags, expunge, …): a
 * location with no store is NOT_FOUND, and no empty store is left behind.
 * `readOnly`: the verb only reads (fetch, list, status, watch, …): as
 * `existing`, and nothing at all is written (StorageOptions.readOnly).
 * `fallbackLocation`: used instead of $MAIL / ./mail when -l is not given.
 */
export async function withStorage<T>(
  program: Command,
  io: CliIo,
  fn: (storage: Storage, replication: CliReplication | undefined) => Promise<T>,
  opts: { existing?: boolean; readOnly?: boolean; fallbackLocation?: string } = {},
): Promise<T> {
  const given = (program.opts() as { location?: string }).location;
  const location = given ?? opts.fallbackLocation ?? defaultLocation(io.env);
  let storage: Storage;
  let replication: CliReplication | undefined;
  try {
    // As doveadm: root works on a user's store as that user (before anything is opened or created).
    io.actAsStoreOwner?.(() => resolveMailLocation(location, { home: os.homedir(), env: io.env }).root);
    // --replicate: the verb's commits are published (replication.ts); reading verbs publish nothing.
    replication = opts.readOnly ? undefined : await openCliReplication(program, () => resolveMailLocation(location, { home: os.homedir(), env: io.env }).root);
    storage = openStorage(location, {
      env: io.env, ...(opts.existing ? { mustExist: true } : {}), ...(opts.readOnly ? { readOnly: true } : {}),
      ...(replication ? { commitHooks: replication.hooks } : {}),
      ...(replication?.treeHooks ? { mailboxTreeHooks: replication.treeHooks } : {}),
      ...(replication?.storageHooks ? { storageHooks: replication.storageHooks } : {}),
    });
  } catch (err) {
    // A location error says where the location came from: -l, $MAIL (a login shell sets it unasked), or the default.
    if (err instanceof MailstoreError && !err.message.includes("came from")) {
      err.message += given !== undefined ? `; the location came from -l ${given}` : location === "" ? `; the location came from $MAIL=${io.env.MAIL}` : `; the location is the default, ${location}`;
    }
    await replication?.close();
    throw err;
  }
  try {
    await replication?.attach(storage);
    return await fn(storage, replication);
  } finally {
    try {
      await replication?.close();
    } finally {
      await storage.close();
    }
  }
}

/** A read-only verb shows what the index holds: says so when the mail files have changes no index has seen (Maildir, mbox). */
export function noteUnindexedChanges(io: CliIo, box: Mailbox): void {
  if (!box.hasUnindexedFileChanges()) return;
  io.err(`mailstore: ${box.name}: the mail files changed since an index last synced them; not shown, as this command writes nothing (a writing command or Dovecot syncs them)\n`);
}

/** Whether a doveadm mailbox pattern has a wildcard (`*` any, `%` any but "/"), or is a name. */
export function isMailboxPattern(pattern: string): boolean {
  return /[*%]/.test(pattern);
}

/** Mailbox names matching a doveadm pattern (`*` any, `%` any but "/"), or the name itself. */
export function matchMailboxes(all: readonly string[], patterns: readonly string[]): string[] {
  if (patterns.length === 0) return [...all];
  const out = new Set<string>();
  for (const pattern of patterns) {
    if (!isMailboxPattern(pattern)) {
      out.add(pattern.toUpperCase() === "INBOX" ? "INBOX" : pattern);
      continue;
    }
    const re = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/%/g, "[^/]*")}$`, "i");
    for (const name of all) if (re.test(name)) out.add(name);
  }
  return [...out];
}
