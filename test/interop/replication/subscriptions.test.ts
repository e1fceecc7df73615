/**
 * Subscriptions through JetStream (issue 14): a primary's subscribe and
 * unsubscribe publish the storage's whole subscribed list on
 * `mail.<storage-id>._subscriptions`, at once (`replicated` mode) or through
 * the outbox (`local` mode), and a replica of another format makes its own
 * subscriptions file that list: doveadm's `mailbox list -s` shows the same
 * names on both. A stale writer's (un)subscribe is fenced and writes
 * nothing; a replica restarted from an earlier position, or from the
 * stream's start, goes straight to the current list (nothing duplicated,
 * no older list applied again).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect, it } from "vitest";
import { openStorage, type Storage } from "../../../src/index.js";
import { ReplicationFencedError } from "../../../src/shared/errors.js";
import { Replica, replicatedStorageHooks, type ReplicationConnection } from "../../../src/replication/index.js";
import type { DovecotOracle, MailFormat } from "../../helpers/dovecot.js";
import { describeNats, useNatsCluster } from "../../helpers/nats.js";
import { catchUpOnce, localModeStorage, replicatingStorage, replicationCli, saveSamples, staleAndCurrentWriters } from "../../helpers/replication.js";
import { sampleMessage } from "../../helpers/dovecot.js";

/** A primary in `mode`, and how to wait until what it did is in the stream. */
async function openPrimary(conn: ReplicationConnection, o: DovecotOracle, storageId: string, mode: "replicated" | "local"): Promise<{ primary: Storage; published(): Promise<void>; close(): Promise<void> }> {
  if (mode === "replicated") {
    const primary = replicatingStorage(conn, o.location, storageId);
    return { primary, published: async () => undefined, close: () => primary.close() };
  }
  const { storage: primary, outbox } = localModeStorage(conn, o.location, storageId, path.join(o.dir, "outbox"));
  await outbox.attach(primary);
  return {
    primary,
    published: async () => {
      await outbox.flush();
      expect(outbox.status().subscriptions, "outbox: subscriptions published").toBe(false);
    },
    close: async () => {
      await outbox.close();
      await primary.close();
    },
  };
}

const sorted = (names: readonly string[]) => [...names].sort();

/** The replica's own file and doveadm on both stores show `expected`. Closes `stores` first (doveadm writes). */
async function expectSubscribedEverywhere(stores: readonly Storage[], r: DovecotOracle, p: DovecotOracle, expected: readonly string[]): Promise<void> {
  for (const s of stores) await s.close();
  await p.chownRoot();
  await r.chownRoot();
  expect(sorted(await p.mailboxListSubscribed()), "doveadm mailbox list -s on the primary").toEqual(sorted(expected));
  expect(sorted(await r.mailboxListSubscribed()), "doveadm mailbox list -s on the replica").toEqual(sorted(expected));
  p.assertNoStderrProblems();
  r.assertNoStderrProblems();
}

/** The lines of the replica's subscriptions file: each name once. */
function subscriptionLines(o: DovecotOracle): string[] {
  const file = o.format === "mbox" ? path.join(o.root, "mail", ".subscriptions") : path.join(o.root, "subscriptions");
  return fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "" && !l.startsWith("V\t"));
}

describeNats("replication: subscriptions", () => {
  const nats = useNatsCluster();

  const cases: Array<{ mode: "replicated" | "local"; from: MailFormat; to: MailFormat }> = [
    { mode: "replicated", from: "mdbox", to: "maildir" },
    { mode: "replicated", from: "sdbox", to: "mbox" },
    { mode: "local", from: "maildir", to: "mdbox" },
    { mode: "local", from: "mbox", to: "sdbox" },
  ];
  for (const { mode, from, to } of cases) {
    it(`${mode} mode, ${from} → ${to}: subscribes and unsubscribes reach the replica, before it starts and live`, async () => {
      const [p, r] = nats.newOracles(from, to);
      await nats.withConnection(async (conn) => {
        const storageId = `t-subs-${mode}-${from}-${to}`;
        const { primary, published, close } = await openPrimary(conn, p, storageId, mode);
        // Mail with the subscriptions: the replica's INBOX comes from the stream too.
        await saveSamples(primary, "INBOX", [1]);
        await primary.createMailbox("Work");
        for (const name of ["INBOX", "Work", "Work/Reports", "Grüße", "Not/Here"]) expect(await primary.subscribe(name), `subscribe ${name}`).toBe(true);
        expect(await primary.unsubscribe("Work")).toBe(true);
        expect(await primary.subscribe("INBOX"), "a subscribe that changes nothing").toBe(false);
        await published();

        const replicaStore = openStorage(r.location);
        const replica = await Replica.start(conn, replicaStore, { storageId, positionFile: path.join(r.dir, "replica-position.json") });
        await replica.caughtUp();
        expect(sorted(await replicaStore.listSubscriptions()), "before the replica started").toEqual(sorted(await primary.listSubscriptions()));

        expect(await primary.unsubscribe("Not/Here")).toBe(true);
        expect(await primary.subscribe("Work")).toBe(true);
        await published();
        await replica.caughtUp();
        const status = replica.status();
        await replica.stop();
        expect(status.error).toBeUndefined();
        const expected = ["INBOX", "Work/Reports", "Grüße", "Work"];
        expect(sorted(await primary.listSubscriptions())).toEqual(sorted(expected));
        expect(sorted(await replicaStore.listSubscriptions()), "live").toEqual(sorted(expected));
        await close();
        await expectSubscribedEverywhere([replicaStore], r, p, expected);
      });
    });
  }

  it("the CLI: mailbox subscribe|unsubscribe with --replicate, replicated and --commit-mode local, reach `replica --once`", async () => {
    const [p, r] = nats.newOracles("mdbox", "maildir");
    const urls = nats.cluster.servers.join(",");
    const { cli, save, replicate } = replicationCli(urls, "t-subs-cli");
    await save(p.location, "INBOX", sampleMessage(1));
    await cli(p.location, ...replicate, "mailbox", "subscribe", "INBOX", "Lists/Dev", "Drafts");
    await cli(p.location, ...replicate, "--commit-mode", "local", "mailbox", "unsubscribe", "Drafts");
    const out = (await cli(r.location, "replica", "--from", urls, "--storage-id", "t-subs-cli", "--once", "--json")).trim().split("\n");
    expect(JSON.parse(out[out.length - 1])).toMatchObject({ lag: 0 });
    await expectSubscribedEverywhere([], r, p, ["INBOX", "Lists/Dev"]);
  });

  it("a stale writer's subscribe and unsubscribe are fenced: its file and the stream stay as they were", async () => {
    const [p] = nats.newOracles("sdbox");
    await nats.withConnection(async (conn) => {
      const storageId = "t-subs-fence";
      const { stale, current, lastSeq } = await staleAndCurrentWriters(conn, p.location, storageId);
      expect(await stale.subscribe("Box")).toBe(true);
      expect(await current.subscribe("Other")).toBe(true);
      const before = await lastSeq();
      await expect(stale.subscribe("Stale")).rejects.toBeInstanceOf(ReplicationFencedError);
      await expect(stale.unsubscribe("Box")).rejects.toBeInstanceOf(ReplicationFencedError);
      expect(await lastSeq(), "nothing published").toBe(before);
      expect(sorted(await stale.listSubscriptions()), "nothing written").toEqual(["Box", "Other"]);
      await stale.close();
      await current.close();
    });
  });

  it("local mode: a stale writer's drain is fenced (its change stays local, as a commit's does); its next subscribe is refused and writes nothing", async () => {
    const [p] = nats.newOracles("mdbox");
    await nats.withConnection(async (conn) => {
      const storageId = "t-subs-local-fence";
      const { storage: stale, outbox } = localModeStorage(conn, p.location, storageId, path.join(p.dir, "outbox"));
      await outbox.attach(stale);
      await saveSamples(stale, "INBOX", [1]);
      expect(await stale.subscribe("First")).toBe(true);
      await outbox.flush();
      const current = replicatingStorage(conn, p.location, storageId);
      expect(await current.subscribe("Current")).toBe(true);
      const lastSeq = () => conn.lastSequence(`${conn.names.subjectPrefix}.${storageId}.>`, Date.now() + conn.timeoutMs);
      const before = await lastSeq();

      expect(await stale.subscribe("Late"), "a local-mode write returns before the drain").toBe(true);
      await expect(outbox.flush()).rejects.toBeInstanceOf(ReplicationFencedError);
      expect(await lastSeq(), "the stale drain published nothing").toBe(before);
      await expect(stale.subscribe("Later")).rejects.toBeInstanceOf(ReplicationFencedError);
      expect(sorted(await stale.listSubscriptions()), "Later not written").toEqual(["Current", "First", "Late"]);
      await outbox.close();
      await stale.close();
      await current.close();
    });
  });

  it("local mode: a change marked by a process that never drained (killed) is published by the next one to attach the outbox", async () => {
    const [p, r] = nats.newOracles("sdbox", "maildir");
    await nats.withConnection(async (conn) => {
      const storageId = "t-subs-local-left";
      const outboxDir = path.join(p.dir, "outbox");
      const first = localModeStorage(conn, p.location, storageId, outboxDir);
      // Not attached: nothing drains, as in a process killed right after the calls returned.
      expect(await first.storage.subscribe("Left")).toBe(true);
      expect(await first.storage.subscribe("Behind")).toBe(true);
      expect(first.outbox.status().subscriptions, "marked before subscribe returned").toBe(true);
      await first.outbox.close();
      await first.storage.close();

      const next = localModeStorage(conn, p.location, storageId, outboxDir);
      expect(next.outbox.status().subscriptions, "the mark survives the process").toBe(true);
      await next.outbox.attach(next.storage);
      await next.outbox.flush();
      await next.outbox.close();
      await next.storage.close();
      const replicaStore = openStorage(r.location);
      await catchUpOnce(conn, replicaStore, storageId, path.join(r.dir, "replica-position.json"));
      await expectSubscribedEverywhere([replicaStore], r, p, ["Left", "Behind"]);
    });
  });

  it("a promoted replica takes the subscriptions subject over: its changes are published, the old primary's are fenced", async () => {
    const [p, r, r2] = nats.newOracles("mdbox", "maildir", "sdbox");
    await nats.withConnection(async (conn) => {
      const storageId = "t-subs-promote";
      const primary = replicatingStorage(conn, p.location, storageId);
      await saveSamples(primary, "INBOX", [1]);
      await primary.subscribe("A");
      const replicaStore = openStorage(r.location);
      const replica = await Replica.start(conn, replicaStore, { storageId, positionFile: path.join(r.dir, "replica-position.json") });
      await replica.caughtUp();
      const publisher = await replica.promote();
      await replicaStore.close();
      // The subject ends with the takeover (no list): a new replica applies the lists before it.
      const second = openStorage(r2.location);
      await catchUpOnce(conn, second, storageId, path.join(r2.dir, "replica-position.json"));
      expect(await second.listSubscriptions(), "a new replica after the takeover").toEqual(["A"]);

      const promoted = openStorage(r.location, { storageHooks: replicatedStorageHooks(publisher) });
      expect(await promoted.subscribe("B")).toBe(true);
      await expect(primary.subscribe("Old")).rejects.toBeInstanceOf(ReplicationFencedError);
      expect(await primary.listSubscriptions(), "the fenced old primary wrote nothing").toEqual(["A"]);
      await catchUpOnce(conn, second, storageId, path.join(r2.dir, "replica-position.json"));
      await primary.close();
      await promoted.close();
      await expectSubscribedEverywhere([second], r2, r, ["A", "B"]);
    });
  });

  it("a replica restarted from an earlier position, or from the stream's start, applies only the current list", async () => {
    const [p, r] = nats.newOracles("mdbox", "sdbox");
    await nats.withConnection(async (conn) => {
      const storageId = "t-subs-restart";
      const primary = replicatingStorage(conn, p.location, storageId);
      await saveSamples(primary, "INBOX", [1]);
      await primary.subscribe("A");
      await primary.subscribe("B");
      const replicaStore = openStorage(r.location);
      const positionFile = path.join(r.dir, "replica-position.json");
      const earlier = path.join(r.dir, "earlier-position.json");
      const restart = async (file: string) => {
        const replica = await Replica.start(conn, replicaStore, { storageId, positionFile: file });
        await replica.caughtUp();
        const status = replica.status();
        await replica.stop();
        expect(status.error).toBeUndefined();
        return status;
      };
      expect((await restart(positionFile)).appliedStorageEvents, "only the last of two lists").toBe(1);
      fs.copyFileSync(positionFile, earlier);

      await primary.unsubscribe("A");
      await primary.subscribe("C");
      await primary.unsubscribe("B");
      const resumed = await restart(positionFile);
      expect([resumed.appliedStorageEvents, resumed.skippedStorageEvents], "resumed: the current list, the two before it skipped").toEqual([1, 2]);
      expect(await replicaStore.listSubscriptions()).toEqual(["C"]);

      const again = await restart(earlier);
      expect([again.appliedStorageEvents, again.skippedStorageEvents], "from the earlier position: nothing applied").toEqual([0, 3]);
      const fromStart = await restart(path.join(r.dir, "from-start.json"));
      expect([fromStart.appliedStorageEvents, fromStart.skippedStorageEvents], "from the stream's start: nothing applied").toEqual([0, 5]);
      expect(subscriptionLines(r), "the replica's file names C once").toEqual(["C"]);
      await primary.close();
      await expectSubscribedEverywhere([replicaStore], r, p, ["C"]);
    });
  });
}, { doveadm: true });
