/**
 * Mailbox create on a replicating primary reaches replicas before any
 * message is committed to it: the create is the first message of the new
 * mailbox's subject (its GUID), with its name and UIDVALIDITY, in order with
 * the commits, renames and deletes after it. An sdbox primary creates A and
 * B and commits to A only; an mdbox replica that already had B (same
 * UIDVALIDITY) catches up with A and B as the primary has them (doveadm's
 * UIDVALIDITY included), then follows a rename of B, commits in it and a
 * delete of A; restarts from the stream's start apply nothing twice; a
 * Maildir replica started afterwards never creates A (deleted) and ends as
 * the primary. A fenced writer's create publishes nothing. The CLI's `mailbox
 * create` with `--replicate` publishes too.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect, it } from "vitest";
import { openStorage, type Storage } from "../../../src/index.js";
import { ReplicationFencedError } from "../../../src/shared/errors.js";
import { Replica, ReplicationConnection } from "../../../src/replication/index.js";
import { createOracle, sampleMessage, type DovecotOracle } from "../../helpers/dovecot.js";
import { describeNats, useNatsCluster } from "../../helpers/nats.js";
import { doveadmView, portableState, expectSameStores, replicatingStorage, replicationCli, saveSamples as save, sortedNames, staleAndCurrentWriters } from "../../helpers/replication.js";

async function uidValidityOf(storage: Storage, name: string): Promise<number> {
  const box = await storage.openMailbox(name);
  try {
    return box.uidValidity;
  } finally {
    await box.close();
  }
}

async function doveadmUidValidity(o: DovecotOracle, name: string): Promise<string> {
  await o.chownRoot();
  return (await o.mailboxStatus("uidvalidity", name.replace("/", o.separator))).uidvalidity;
}

/** Restarts the replica from the stream's start (its position file otherwise kept) and expects it to apply nothing. */
async function expectNothingAppliedFromStart(conn: ReplicationConnection, store: Storage, storageId: string, positionFile: string): Promise<void> {
  const saved = JSON.parse(fs.readFileSync(positionFile, "utf8")) as Record<string, unknown>;
  fs.writeFileSync(positionFile, JSON.stringify({ ...saved, streamSeq: 0 }));
  const replica = await Replica.start(conn, store, { storageId, positionFile });
  await replica.caughtUp();
  const again = replica.status();
  await replica.stop();
  expect(again.error).toBeUndefined();
  expect(again.appliedTransactions, "applied again from the stream's start").toBe(0);
  expect(again.skippedTransactions).toBeGreaterThan(0);
}

describeNats("replication: mailbox create", () => {
  const nats = useNatsCluster();

  it("sdbox primary creates A and B, commits to A only; an mdbox replica has both with the primary's UIDVALIDITY, follows a rename and delete after them, and applies nothing twice", async () => {
    const conn = await ReplicationConnection.open({ servers: nats.cluster.servers });
    const p = createOracle("sdbox");
    const r = createOracle("mdbox");
    const late = createOracle("maildir");
    nats.oracles.push(p, r, late);
    try {
      const storageId = "t-create";
      const subjects = `${conn.names.subjectPrefix}.${storageId}.>`;
      const primary = replicatingStorage(conn, p.location, storageId);
      await primary.createMailbox("A");
      expect(await conn.lastSequence(subjects, Date.now() + conn.timeoutMs), "the create of A is published").toBe(1);
      await primary.createMailbox("B", { uidValidity: 1234567 });
      expect(await conn.lastSequence(subjects, Date.now() + conn.timeoutMs), "the create of B is published").toBe(2);
      await save(primary, "A", [1, 2, 3], ["\\Seen"]);
      const a = await primary.openMailbox("A");
      await a.transaction().flags([{ uid1: 2, uid2: 2 }], "add", ["\\Flagged", "kw"]).commit();
      await a.close();
      expect(await uidValidityOf(primary, "B")).toBe(1234567);

      // The replica already has B (same UIDVALIDITY, as an earlier create left it): its create changes nothing there.
      const replicaStore = openStorage(r.location);
      await replicaStore.createMailbox("B", { uidValidity: 1234567 });
      const positionFile = path.join(r.dir, "replica-position.json");
      const created: string[] = [];
      const replica = await Replica.start(conn, replicaStore, {
        storageId, positionFile,
        onApplied: ({ mailbox, result }) => {
          if (result.applied > 0) created.push(mailbox);
        },
      });
      await replica.caughtUp();
      expect(replica.status().error).toBeUndefined();
      expect(created.filter((n) => n === "B"), "B was there already").toEqual([]);
      expect(await sortedNames(replicaStore)).toEqual(["A", "B"]);
      await expectSameStores(replicaStore, primary, "caught up");
      for (const name of ["A", "B"]) expect(await uidValidityOf(replicaStore, name), name).toBe(await uidValidityOf(primary, name));

      // While it runs: a mailbox created now reaches it with no commit, and a rename and delete after creates still do.
      await primary.createMailbox("Empty");
      await replica.caughtUp();
      expect(await sortedNames(replicaStore)).toEqual(["A", "B", "Empty"]);
      await primary.renameMailbox("B", "C");
      await save(primary, "C", [10, 11]);
      await primary.deleteMailbox("A");
      await save(primary, "Empty", [12]);
      await replica.caughtUp();
      expect(replica.status().error).toBeUndefined();
      await replica.stop();
      expect(await sortedNames(primary)).toEqual(["C", "Empty"]);
      await expectSameStores(replicaStore, primary, "after the rename and delete");
      const position = JSON.parse(fs.readFileSync(positionFile, "utf8")) as { mailboxes: Record<string, string> };
      expect(Object.keys(position.mailboxes).sort()).toEqual(["C", "Empty"]);

      await expectNothingAppliedFromStart(conn, replicaStore, storageId, positionFile);
      await expectSameStores(replicaStore, primary, "restarted from the stream's start");

      // A replica started after it all: A (deleted) is never created; B is created, then renamed to C, in the stream's order.
      const lateStore = openStorage(late.location);
      const lateCreated: string[] = [];
      const latePosition = path.join(late.dir, "replica-position.json");
      const lateReplica = await Replica.start(conn, lateStore, {
        storageId, positionFile: latePosition,
        onApplied: ({ mailbox, result }) => {
          if (result.applied > 0) lateCreated.push(mailbox);
        },
      });
      await lateReplica.caughtUp();
      expect(lateReplica.status().error).toBeUndefined();
      await lateReplica.stop();
      expect(lateCreated).not.toContain("A");
      // Maildir lists INBOX always.
      expect(await sortedNames(lateStore)).toEqual(["C", "Empty", "INBOX"]);
      for (const name of ["C", "Empty"]) expect(await portableState(lateStore, name), `late ${name}`).toEqual(await portableState(primary, name));
      await expectNothingAppliedFromStart(conn, lateStore, storageId, latePosition);

      await primary.close();
      await replicaStore.close();
      await lateStore.close();
      for (const name of ["C", "Empty"]) {
        expect(await doveadmUidValidity(r, name), `doveadm ${name} (mdbox replica)`).toBe(await doveadmUidValidity(p, name));
        expect(await doveadmUidValidity(late, name), `doveadm ${name} (Maildir replica)`).toBe(await doveadmUidValidity(p, name));
        expect(await doveadmView(r, name), `doveadm ${name}`).toEqual(await doveadmView(p, name));
        expect(await doveadmView(late, name), `doveadm ${name}`).toEqual(await doveadmView(p, name));
      }
      expect(await doveadmUidValidity(p, "C")).toBe("1234567");
      p.assertNoStderrProblems();
      r.assertNoStderrProblems();
      late.assertNoStderrProblems();
    } finally {
      await conn.close();
    }
  });

  it("before any commit: A and B as created, doveadm's UIDVALIDITY on both sides", async () => {
    const conn = await ReplicationConnection.open({ servers: nats.cluster.servers });
    const p = createOracle("sdbox");
    const r = createOracle("mdbox");
    nats.oracles.push(p, r);
    try {
      const storageId = "t-create-doveadm";
      const primary = replicatingStorage(conn, p.location, storageId);
      await primary.createMailbox("A");
      await primary.createMailbox("B");
      await save(primary, "A", [1, 2]);
      const replicaStore = openStorage(r.location);
      const positionFile = path.join(r.dir, "replica-position.json");
      const replica = await Replica.start(conn, replicaStore, { storageId, positionFile });
      await replica.caughtUp();
      expect(replica.status().error).toBeUndefined();
      await replica.stop();
      expect(await portableState(replicaStore, "A")).toEqual(await portableState(primary, "A"));
      await expectNothingAppliedFromStart(conn, replicaStore, storageId, positionFile);
      await primary.close();
      await replicaStore.close();
      for (const name of ["A", "B"]) expect(await doveadmUidValidity(r, name), `doveadm ${name}`).toBe(await doveadmUidValidity(p, name));
      expect(await doveadmView(r, "A")).toEqual(await doveadmView(p, "A"));
      expect((await r.mailboxList()).sort()).toEqual((await p.mailboxList()).sort());
      p.assertNoStderrProblems();
      r.assertNoStderrProblems();
    } finally {
      await conn.close();
    }
  });

  it("a fenced writer's create fails with ReplicationFencedError and publishes nothing", async () => {
    const conn = await ReplicationConnection.open({ servers: nats.cluster.servers });
    const p = createOracle("sdbox");
    nats.oracles.push(p);
    try {
      const { stale, current, lastSeq } = await staleAndCurrentWriters(conn, p.location, "t-create-fence");
      await expect(save(stale, "Box", [3])).rejects.toBeInstanceOf(ReplicationFencedError);
      const lastBefore = await lastSeq();
      await expect(stale.createMailbox("New")).rejects.toBeInstanceOf(ReplicationFencedError);
      expect(await lastSeq()).toBe(lastBefore);
      // The writer that is not fenced publishes its creates.
      await current.createMailbox("Other");
      expect(await lastSeq()).toBe(lastBefore + 1);
      await stale.close();
      await current.close();
    } finally {
      await conn.close();
    }
  });

  it("CLI: mailbox create with --replicate reaches `replica --once` with no commit", async () => {
    const p = createOracle("sdbox");
    const r = createOracle("maildir");
    nats.oracles.push(p, r);
    const urls = nats.cluster.servers.join(",");
    const { cli, save: saveCli, replicate } = replicationCli(urls, "cli-create");
    await cli(p.location, ...replicate, "mailbox", "create", "Drafts", "Sent");
    const out = (await cli(r.location, "replica", "--from", urls, "--storage-id", "cli-create", "--once", "--json")).trim().split("\n");
    expect(JSON.parse(out[out.length - 1])).toMatchObject({ lag: 0 });
    for (const name of ["Drafts", "Sent"]) expect(await doveadmUidValidity(r, name), `doveadm ${name}`).toBe(await doveadmUidValidity(p, name));
    expect((await r.mailboxList()).sort()).toEqual(["Drafts", "INBOX", "Sent"]);
    // A commit of a later process continues the subject from the create.
    await saveCli(p.location, "Drafts", sampleMessage(1));
    const again = (await cli(r.location, "replica", "--from", urls, "--storage-id", "cli-create", "--once", "--json")).trim().split("\n");
    expect(JSON.parse(again[again.length - 1])).toMatchObject({ lag: 0 });
    for (const name of ["Drafts", "Sent"]) expect(await doveadmView(r, name), `doveadm ${name}`).toEqual(await doveadmView(p, name));
    p.assertNoStderrProblems();
    r.assertNoStderrProblems();
  });
}, { doveadm: true });
