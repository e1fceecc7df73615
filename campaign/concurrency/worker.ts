/**
 * One engine process of the concurrency campaign (and of
 * test/interop/concurrency.test.ts), run from dist/ as the mail uid like
 * doveadm: random operations (ops.ts) on one mailbox through the public API
 * while another engine process and doveadm do the same.
 * Usage: node worker.js '<WorkerArgs JSON>'.
 * Before an operation it may reopen the mailbox or refresh it, as a server
 * does between commands.
 * Protocol: prints "ready" once the mailbox is open; then each "tick N" line
 * on stdin allows N more operations, run back to back; "end" lifts the limit.
 * Every operation is retried on LOCK_TIMEOUT (a busy or lost lock: nothing
 * was acknowledged) until it is acknowledged. The last stdout line is a
 * WorkerReport: the acknowledged operations in order, or {error}.
 */
import { subscribe } from "node:diagnostics_channel";
import * as readline from "node:readline";
import { MailstoreError, openStorage } from "../../src/index.js";
import { LOCK_WAIT_CHANNEL } from "../../src/log/lock.js";
import { Rng } from "../lib/rng.js";
import { applyOwn, chooseOp, ownedFlags, type Op, type OpKind, type OwnMessages, type WorkerReport } from "./ops.js";

export interface WorkerArgs {
  location: string;
  mailbox: string;
  /** Where copy and move put messages. */
  other: string;
  name: string;
  seed: number;
  ops: number;
  /** Flag changes target uids 1..maxUid. */
  maxUid: number;
  systemFlag: string;
  kinds: OpKind[];
}

const args = JSON.parse(process.argv[2]) as WorkerArgs;
const lockWaitsMs: number[] = [];
subscribe(LOCK_WAIT_CHANNEL, (m) => lockWaitsMs.push((m as { waitMs: number }).waitMs));
const rng = new Rng(args.seed ^ [...args.name].reduce((h, c) => Math.imul(h, 31) + c.charCodeAt(0), 7));
const owned = ownedFlags(args.name, args.systemFlag);

let credits = 0;
let unlimited = false;
let wake = (): void => undefined;
const input = readline.createInterface({ input: process.stdin });
input.on("line", (line) => {
  if (line.startsWith("tick ")) credits += Number(line.slice(5));
  else if (line === "end") unlimited = true;
  wake();
});
async function takeCredit(): Promise<void> {
  while (!unlimited && credits === 0) await new Promise<void>((resolve) => (wake = resolve));
  credits--;
}

const storage = openStorage(args.location, { lockTimeoutMs: 20_000 });
let box = await storage.openMailbox(args.mailbox);
const other = args.kinds.some((k) => k === "copy" || k === "move") ? await storage.openMailbox(args.other) : undefined;
process.stdout.write("ready\n");

const done: Op[] = [];
let retries = 0;
const lockErrors = new Map<string, number>();
const own: OwnMessages = { main: new Set(), other: new Set() };
/** uid of each own message in the main mailbox. */
const uids = new Map<string, number>();

/** Runs `fn` until it succeeds, again after each LOCK_TIMEOUT (counted: message → times). */
async function retried<T>(fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof MailstoreError) || err.code !== "LOCK_TIMEOUT") throw err;
      retries++;
      const key = err.message.replace(/offset \d+|size \d+|expected \d+|\d+ ms/g, "N");
      lockErrors.set(key, (lockErrors.get(key) ?? 0) + 1);
    }
  }
}

const range = (subject: string) => [{ uid1: uids.get(subject)!, uid2: uids.get(subject)! }];

/** One attempt at `op`; `progress.copied` keeps a copy that landed from copying again when it is retried. */
async function perform(op: Op, i: number, progress: { copied: boolean }): Promise<void> {
  switch (op.kind) {
    case "save": {
      // A Message-ID of its own: mbox GUIDs are a hash of such headers.
      const body = `From: ${args.name}@test\nSubject: ${op.subject}\nMessage-ID: <${op.subject}@concurrency.test>\n\nbody ${i}\n`;
      const { appendedUids } = await box.transaction().append({ body, flags: [] }).commit();
      uids.set(op.subject, appendedUids[0]);
      return;
    }
    case "flags":
      await box.transaction().flags([{ uid1: op.uid1, uid2: op.uid2 }], op.action, op.names).commit();
      return;
    case "expunge":
      await box.transaction().expunge(range(op.subject)).commit();
      return;
    case "copy":
      if (!progress.copied) await box.transaction().copyTo(other!, range(op.subject));
      progress.copied = true;
      return;
    case "move":
      // A retry after a lock timeout finishes a move whose copy landed instead of copying again.
      await box.moveTo(other!, range(op.subject));
      return;
  }
}

try {
  for (let i = 0; i < args.ops; i++) {
    await takeCredit();
    // What a server does between commands: reopen the mailbox now and then,
    // and refresh (which syncs Maildir/mbox files with the index under the lock).
    const before = rng.int(10);
    if (before === 0) {
      await box.close();
      box = await storage.openMailbox(args.mailbox);
    }
    if (before < 5) await retried(() => box.refresh());
    const op = chooseOp((n) => rng.int(n), args.kinds, args.name, i, owned, args.maxUid, own);
    const progress = { copied: false };
    await retried(() => perform(op, i, progress));
    applyOwn(own, op);
    done.push(op);
  }
  await box.close();
  await other?.close();
  await storage.close();
  process.stdout.write(JSON.stringify({ name: args.name, done, retries, lockErrors: Object.fromEntries(lockErrors), lockWaitsMs } satisfies WorkerReport) + "\n");
} catch (err) {
  const report: WorkerReport = { name: args.name, done, retries, lockErrors: Object.fromEntries(lockErrors), lockWaitsMs, error: String(err instanceof Error ? (err.stack ?? err) : err) };
  process.stdout.write(JSON.stringify(report) + "\n");
  process.exitCode = 1;
}
input.close();
process.stdin.destroy();
