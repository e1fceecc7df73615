/**
 * Replication test helpers: random mailbox work on a primary, and what a
 * store looks like to the engine (`replay --json`'s format-independent part)
 * and to doveadm (`fetch 'uid flags guid modseq'` + text, mailbox status).
 */
import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import { expect } from "vitest";
import { Outbox, Publisher, Replica, replicatedCommitHooks, replicatedStorageHooks, replicatedTreeHooks, type ReplicaStatus, type ReplicationConnection } from "../../src/replication/index.js";
import { openStorage, flagNames, getHeader, highestModseq, messageCount, recordAt, type Storage } from "../../src/index.js";
import type { DovecotOracle } from "./dovecot.js";
import { doveadmFetch } from "./fetch-compare.js";
import { sampleMessage } from "./dovecot.js";
import { prng } from "../../campaign/lib/rng.js";

const exec = promisify(execFile);
const MAILSTORE_BIN = path.resolve(__dirname, "../../bin/mailstore.js");

export const REPLICATED_MAILBOXES = ["INBOX", "Other"];

const FLAGS = ["\\Seen", "\\Flagged", "\\Answered", "\\Draft", "\\Deleted", "$Label1", "$Junk", "work", "todo"];

/** What one random step did, for failure messages. */
export type Step = string;

/**
 * `count` random operations on the primary (save, flags, keywords, copy,
 * move, expunge, purge) over INBOX and Other, which must exist; the same
 * `seed`, the same operations.
 * @returns the steps, in order.
 */
export async function randomWork(storage: Storage, seed: number, count: number, opts: { bigBodyEvery?: number } = {}): Promise<Step[]> {
  const rnd = prng(seed);
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const boxes = { INBOX: await storage.openMailbox("INBOX"), Other: await storage.openMailbox("Other") };
  const steps: Step[] = [];
  let n = 0;
  try {
    for (let i = 0; i < count; i++) {
      const name = pick(REPLICATED_MAILBOXES) as keyof typeof boxes;
      const box = boxes[name];
      const other = boxes[name === "INBOX" ? "Other" : "INBOX"];
      const state = await box.refresh();
      const uids: number[] = [];
      for (let s = 1; s <= messageCount(state); s++) uids.push(recordAt(state, s)!.uid);
      const some = () => {
        const chosen = uids.filter(() => rnd() < 0.4);
        return chosen.length > 0 ? chosen : uids.slice(0, 1);
      };
      const ranges = (xs: number[]) => xs.map((uid) => ({ uid1: uid, uid2: uid }));
      const r = rnd();
      if (uids.length === 0 || r < 0.3) {
        const tx = box.transaction();
        const k = 1 + Math.floor(rnd() * 3);
        for (let j = 0; j < k; j++) {
          n++;
          const big = opts.bigBodyEvery !== undefined && n % opts.bigBodyEvery === 0;
          tx.append({ body: sampleMessage(seed * 1000 + n, big ? { minSize: 700 * 1024 } : {}), flags: FLAGS.filter(() => rnd() < 0.2) });
        }
        await tx.commit();
        steps.push(`${name}: save ${k}`);
      } else if (r < 0.55) {
        const action = pick(["add", "remove", "replace"] as const);
        const flags = FLAGS.filter(() => rnd() < 0.3);
        const chosen = some();
        await box.transaction().flags(ranges(chosen), action, flags).commit();
        steps.push(`${name}: flags ${action} ${flags.join(" ")} ${chosen.join(",")}`);
      } else if (r < 0.65) {
        const chosen = some();
        await box.transaction().flags(ranges(chosen), pick(["add", "remove"] as const), [pick(["$Label1", "work", "todo", "new-" + i])]).commit();
        steps.push(`${name}: keyword ${chosen.join(",")}`);
      } else if (r < 0.75) {
        const chosen = some();
        await box.transaction().copyTo(other, ranges(chosen));
        steps.push(`${name}: copy ${chosen.join(",")}`);
      } else if (r < 0.85) {
        const chosen = some();
        // IMAP MOVE (Mailbox.moveTo: a copy commit there, an expunge commit here, journaled), not a copy and an expunge of our own.
        await box.moveTo(other, ranges(chosen));
        steps.push(`${name}: move ${chosen.join(",")}`);
      } else if (r < 0.95) {
        const chosen = some();
        await box.transaction().expunge(ranges(chosen)).commit();
        steps.push(`${name}: expunge ${chosen.join(",")}`);
      } else {
        await storage.purge();
        steps.push("purge");
      }
    }
  } finally {
    await boxes.INBOX.close();
    await boxes.Other.close();
  }
  return steps;
}

/** `mailstore replay --json` of a mailbox, without what depends on the format (index id, log offsets, extensions). */
export async function portableState(storage: Storage, mailbox: string): Promise<unknown> {
  const box = await storage.openMailbox(mailbox);
  try {
    const state = await box.refresh();
    const h = getHeader(state);
    const messages = [];
    for (let seq = 1; seq <= messageCount(state); seq++) {
      const r = recordAt(state, seq)!;
      messages.push({ uid: r.uid, flags: flagNames(r.flags), keywords: r.keywords, modseq: String(r.modseq) });
    }
    return {
      uidValidity: h.uidValidity, nextUid: h.nextUid, messagesCount: h.messagesCount, highestModseq: String(highestModseq(state)),
      seenMessagesCount: h.seenMessagesCount, deletedMessagesCount: h.deletedMessagesCount, keywords: state.keywords, messages,
    };
  } finally {
    await box.close();
  }
}

/**
 * `mailstore replay DIR --json` of a mailbox (DIR: its index directory),
 * run as a command, without what depends on the format or the files: the
 * log position, index id, log offsets and extensions of the header.
 */
export async function replayJson(storage: Storage, mailbox: string): Promise<unknown> {
  const box = await storage.openMailbox(mailbox);
  let dir: string;
  try {
    dir = path.dirname(box.indexPrefix);
  } finally {
    await box.close();
  }
  const { stdout } = await exec(process.execPath, [MAILSTORE_BIN, "replay", dir, "--json"], { env: { ...process.env, MAIL: "" }, maxBuffer: 64 << 20 });
  const { position: _p, extensions: _e, header, ...rest } = JSON.parse(stdout) as { position: unknown; extensions: unknown; header: Record<string, unknown> };
  const { indexId: _i, logFileSeq: _s, logFileTailOffset: _t, logFileHeadOffset: _h, ...portableHeader } = header;
  return { header: portableHeader, ...rest };
}

/** The replica's `replay --json` (replayJson) of each of `names` equals the primary's. */
export async function expectSameReplays(replica: Storage, primary: Storage, names: readonly string[], what: string): Promise<void> {
  for (const name of names) expect(await replayJson(replica, name), `replay --json ${name}; ${what}`).toEqual(await replayJson(primary, name));
}

/** What doveadm shows of a mailbox: status, then every message's uid, flags, GUID, modseq and text. */
export async function doveadmView(o: DovecotOracle, mailbox: string): Promise<unknown> {
  await o.chownRoot();
  const theirs = mailbox.replace("/", o.separator);
  const { mailbox: _, ...status } = await o.mailboxStatus("messages uidvalidity uidnext highestmodseq unseen", theirs);
  return { status, messages: await doveadmFetch(o, theirs, { modseq: true }) };
}

/** The mailstore CLI as a replicating process would run it: `--replicate URLS --replicate-id ID` on writes. */
export function replicationCli(urls: string, storageId: string) {
  const bin = MAILSTORE_BIN;
  const env = { ...process.env, MAIL: "" };
  const replicate = ["--replicate", urls, "--replicate-id", storageId];
  return {
    bin,
    env,
    replicate,
    /** Runs `mailstore -l LOCATION ARGS…`. @returns its stdout. */
    async cli(location: string, ...args: string[]): Promise<string> {
      return (await exec(process.execPath, [bin, "-l", location, ...args], { env })).stdout;
    },
    /** `save -m MAILBOX` of `body` with --replicate (and `extra` global options). @throws the exec error, with its stderr. */
    save(location: string, mailbox: string, body: string, extra: string[] = []): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        const child = execFile(process.execPath, [bin, "-l", location, ...replicate, ...extra, "save", "-m", mailbox], { env }, (err, _out, stderr) => (err ? reject(Object.assign(err, { stderr })) : resolve()));
        child.stdin!.end(body);
      });
    },
  };
}

/** Appends sampleMessage(seed) for each seed to `mailbox`, in one commit. */
export async function saveSamples(storage: Storage, mailbox: string, seeds: readonly number[], flags: string[] = []): Promise<void> {
  const box = await storage.openMailbox(mailbox);
  try {
    const tx = box.transaction();
    for (const i of seeds) tx.append({ body: sampleMessage(i), flags });
    await tx.commit();
  } finally {
    await box.close();
  }
}

export async function sortedNames(storage: Storage): Promise<string[]> {
  return (await storage.listMailboxes()).sort();
}

/** The replica has the primary's mailboxes, each with the primary's portableState. */
export async function expectSameStores(replica: Storage, primary: Storage, what: string): Promise<void> {
  const names = await sortedNames(primary);
  expect(await sortedNames(replica), `${what}: mailbox list`).toEqual(names);
  for (const name of names) expect(await portableState(replica, name), `${what}: ${name}`).toEqual(await portableState(primary, name));
}

/** Starts a replica of `storageId` on `store`, waits until it applied all the stream has, stops it. @returns its status (no error). */
export async function catchUpOnce(conn: ReplicationConnection, store: Storage, storageId: string, positionFile: string): Promise<ReplicaStatus> {
  const replica = await Replica.start(conn, store, { storageId, positionFile });
  await replica.caughtUp();
  const status = replica.status();
  await replica.stop();
  expect(status.error).toBeUndefined();
  return status;
}

/** Closes `stores`; then doveadm shows `names` on the replica `r` as on the primary `p`, and neither logged a problem. */
export async function closeAndCompareInDoveadm(stores: readonly Storage[], r: DovecotOracle, p: DovecotOracle, names: readonly string[]): Promise<void> {
  for (const store of stores) await store.close();
  await expectSameDoveadmViews(r, p, names);
  p.assertNoStderrProblems();
  r.assertNoStderrProblems();
}

/**
 * doveadm shows mailboxes `names` of the replica `r` as it shows those of
 * the primary `p` (doveadmView); `guids: false`: GUIDs aside (an mbox
 * replica's: an mbox message's GUID is its header MD5, which a save cannot set).
 */
export async function expectSameDoveadmViews(r: DovecotOracle, p: DovecotOracle, names: readonly string[], { guids = true } = {}): Promise<void> {
  const shown = async (o: DovecotOracle, name: string) => {
    const view = (await doveadmView(o, name)) as { messages: Array<{ guid: string }> };
    return guids ? view : { ...view, messages: view.messages.map((m) => ({ ...m, guid: "" })) };
  };
  for (const name of names) expect(await shown(r, name), `doveadm ${name}`).toEqual(await shown(p, name));
}

/**
 * Two replicating writers of the store at `location`, each with its own
 * Publisher (its own view of the subjects): `stale` creates mailbox "Box"
 * and commits to it, then `current` commits to it, so `stale`'s next write
 * is fenced. `lastSeq()`: the storage's last stream sequence.
 */
export async function staleAndCurrentWriters(conn: ReplicationConnection, location: string, storageId: string): Promise<{ stale: Storage; current: Storage; lastSeq(): Promise<number> }> {
  const stale = replicatingStorage(conn, location, storageId);
  const current = replicatingStorage(conn, location, storageId);
  await stale.createMailbox("Box");
  await saveSamples(stale, "Box", [1]);
  await saveSamples(current, "Box", [2]);
  const subjects = `${conn.names.subjectPrefix}.${storageId}.>`;
  return { stale, current, lastSeq: () => conn.lastSequence(subjects, Date.now() + conn.timeoutMs) };
}

/**
 * `location` opened as a `local`-mode primary: commits, creates, renames and
 * deletes go through an outbox in `outboxDir`, with a new Publisher (purges
 * and altmoves are published once it is drained). Not attached: nothing
 * drains until `outbox.attach(storage)`.
 */
export function localModeStorage(conn: ReplicationConnection, location: string, storageId: string, outboxDir: string): { storage: Storage; outbox: Outbox } {
  const outbox = new Outbox(new Publisher(conn, storageId), outboxDir);
  return { storage: openStorage(location, { commitHooks: outbox.hooks, mailboxTreeHooks: outbox.treeHooks, storageHooks: outbox.storageHooks }), outbox };
}

/** `location` opened as a replicating primary: commits, creates, renames, deletes, purges and altmoves published by a new Publisher. */
export function replicatingStorage(conn: ReplicationConnection, location: string, storageId: string): Storage {
  const publisher = new Publisher(conn, storageId);
  return openStorage(location, { commitHooks: replicatedCommitHooks(publisher), mailboxTreeHooks: replicatedTreeHooks(publisher), storageHooks: replicatedStorageHooks(publisher) });
}

/**
 * A replica of `storageId` on `r`, caught up; `until`: a wait until `done()`
 * holds, asked again after each message the replica applies (told by the
 * replica: no polling, no sleep); `converges`: until its mailboxes equal the
 * primary's.
 */
export async function liveReplica(conn: ReplicationConnection, r: DovecotOracle, storageId: string) {
  const store = openStorage(r.location);
  let applied: (() => void) | undefined;
  const replica = await Replica.start(conn, store, { storageId, positionFile: path.join(r.dir, "replica-position.json"), onApplied: () => applied?.() });
  await replica.caughtUp();
  /** Resolves once the replica applied a message past stream sequence `after`. */
  const appliedPast = (after: number, what: string) => new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: the replica applied nothing after stream sequence ${after} within 15 s (the primary did not publish)`)), 15_000);
    applied = () => {
      if (replica.status().appliedSeq <= after) return;
      clearTimeout(timer);
      applied = undefined;
      resolve();
    };
    applied();
  });
  const until = async (done: () => Promise<boolean>, what: string): Promise<void> => {
    for (;;) {
      const after = replica.status().appliedSeq;
      if (await done()) return;
      await appliedPast(after, what);
    }
  };
  return {
    store,
    replica,
    until,
    async converges(primary: Storage, what: string): Promise<void> {
      await until(async () => JSON.stringify(await states(store)) === JSON.stringify(await states(primary)), what);
      await expectSameStores(store, primary, what);
    },
  };
}

async function states(storage: Storage): Promise<unknown[]> {
  return Promise.all((await sortedNames(storage)).map((name) => portableState(storage, name)));
}

/** Messages of the storage's subjects in the stream after `seq`, counted one by one (what a replica's lag must be). */
export async function lagFrom(conn: ReplicationConnection, storageId: string, seq: number): Promise<number> {
  const info = await conn.jsm.streams.info(conn.names.stream, { subjects_filter: `${conn.names.subjectPrefix}.${storageId}.>` });
  let n = 0;
  for (let s = seq + 1; s <= info.state.last_seq; s++) {
    const m = await conn.jsm.streams.getMessage(conn.names.stream, { seq: s });
    if (m.subject.startsWith(`${conn.names.subjectPrefix}.${storageId}.`)) n++;
  }
  return n;
}
