/**
 * Mailbox rename and delete on a replicating primary reach replicas: each
 * goes, as a message of its own, on the mailbox's subject (keyed by the
 * mailbox GUID, which a rename keeps), in order with its commits. An mdbox
 * primary renames one mailbox, deletes another and commits on in the
 * renamed one; a Maildir replica running along, a fresh sdbox replica
 * catching up from the stream's start, and the Maildir replica restarted
 * from an older position file all end with the primary's mailbox list and
 * states (doveadm agrees), nothing applied twice. A fenced writer renames
 * nothing. The CLI's `mailbox rename|delete` with `--replicate` publish too.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect, it } from "vitest";
import { openStorage, type Storage } from "../../../src/index.js";
import { ReplicationFencedError } from "../../../src/shared/errors.js";
import { Replica, ReplicationConnection } from "../../../src/replication/index.js";
import { createOracle, sampleMessage, type DovecotOracle } from "../../helpers/dovecot.js";
import { describeNats, useNatsCluster } from "../../helpers/nats.js";
import { expectSameDoveadmViews, portableState, randomWork, expectSameStores, replicatingStorage, replicationCli, saveSamples as save, sortedNames, staleAndCurrentWriters } from "../../helpers/replication.js";

async function expectSameForDoveadm(r: DovecotOracle, p: DovecotOracle, names: readonly string[]): Promise<void> {
  await r.chownRoot();
  await p.chownRoot();
  expect((await r.mailboxList()).sort(), "doveadm mailbox list").toEqual((await p.mailboxList()).sort());
  await expectSameDoveadmViews(r, p, names);
}

describeNats("replication: mailbox rename and delete", () => {
  const nats = useNatsCluster();

  it("mdbox primary renames one mailbox and deletes another; Maildir and sdbox replicas follow, and a restart from an older position applies nothing twice", async () => {
    const conn = await ReplicationConnection.open({ servers: nats.cluster.servers });
    const p = createOracle("mdbox");
    const r = createOracle("maildir");
    const fresh = createOracle("sdbox");
    nats.oracles.push(p, r, fresh);
    try {
      const storageId = "t-rename";
      const primary = replicatingStorage(conn, p.location, storageId);
      await primary.createMailbox("Other");
      await primary.createMailbox("Old");
      await randomWork(primary, 1421, 20);
      await save(primary, "Old", [1, 2, 3], ["\\Seen"]);
      const other = await primary.openMailbox("Other");
      const otherGuid = other.guid();
      await other.close();

      const positionFile = path.join(r.dir, "replica-position.json");
      const replicaStore = openStorage(r.location);
      let replica = await Replica.start(conn, replicaStore, { storageId, positionFile });
      await replica.caughtUp();
      expect(await sortedNames(replicaStore)).toEqual(["INBOX", "Old", "Other"]);
      const olderPosition = fs.readFileSync(positionFile, "utf8");

      // While the replica runs: rename, delete, then commits in the renamed mailbox (under its new name).
      await primary.renameMailbox("Other", "Projects");
      await primary.deleteMailbox("Old");
      const renamed = await primary.openMailbox("Projects");
      expect(renamed.guid(), "the mailbox GUID survives the rename").toBe(otherGuid);
      await renamed.close();
      await save(primary, "Projects", [10, 11]);
      await save(primary, "INBOX", [12]);
      const projects = await primary.openMailbox("Projects");
      await projects.transaction().flags([{ uid1: 1, uid2: 0xffffffff }], "add", ["\\Flagged", "moved"]).commit();
      await projects.close();

      await replica.caughtUp();
      const live = replica.status();
      expect(live.error).toBeUndefined();
      await replica.stop();
      expect(await sortedNames(primary)).toEqual(["INBOX", "Projects"]);
      await expectSameStores(replicaStore, primary, "live replica");
      const position = JSON.parse(fs.readFileSync(positionFile, "utf8")) as { mailboxes: Record<string, string> };
      expect(position.mailboxes).toEqual({ INBOX: expect.any(String), Projects: otherGuid });

      // Restarted from the position file saved before the rename and delete: they and the commits after them come again.
      fs.writeFileSync(positionFile, olderPosition);
      replica = await Replica.start(conn, replicaStore, { storageId, positionFile });
      await replica.caughtUp();
      let again = replica.status();
      expect(again.error).toBeUndefined();
      expect(again.appliedTransactions).toBe(0);
      expect(again.skippedTransactions).toBeGreaterThan(0);
      expect(again.appliedSeq).toBe(live.appliedSeq);
      await replica.stop();
      await expectSameStores(replicaStore, primary, "replica restarted from an older position");

      // And from the stream's start: the deleted mailbox's commits and the renamed one's under its old name are not applied again.
      const saved = JSON.parse(fs.readFileSync(positionFile, "utf8")) as Record<string, unknown>;
      fs.writeFileSync(positionFile, JSON.stringify({ ...saved, streamSeq: 0 }));
      replica = await Replica.start(conn, replicaStore, { storageId, positionFile });
      await replica.caughtUp();
      again = replica.status();
      expect(again.error).toBeUndefined();
      expect(again.appliedTransactions).toBe(0);
      await replica.stop();
      await expectSameStores(replicaStore, primary, "replica restarted from the stream's start");

      // A replica that starts after it all: the deleted mailbox is never created, the renamed one is.
      const freshStore = openStorage(fresh.location);
      const created: string[] = [];
      const late = await Replica.start(conn, freshStore, {
        storageId, positionFile: path.join(fresh.dir, "replica-position.json"),
        onApplied: ({ mailbox, result }) => {
          if (result.applied > 0 && !created.includes(mailbox)) created.push(mailbox);
        },
      });
      await late.caughtUp();
      expect(late.status().error).toBeUndefined();
      await late.stop();
      expect(created).not.toContain("Old");
      await expectSameStores(freshStore, primary, "replica started afterwards");

      await primary.close();
      await replicaStore.close();
      await freshStore.close();
      await expectSameForDoveadm(r, p, ["INBOX", "Projects"]);
      await expectSameForDoveadm(fresh, p, ["INBOX", "Projects"]);
      p.assertNoStderrProblems();
      r.assertNoStderrProblems();
      fresh.assertNoStderrProblems();
    } finally {
      await conn.close();
    }
  });

  it("a fenced writer renames and deletes nothing, locally or in the stream", async () => {
    const conn = await ReplicationConnection.open({ servers: nats.cluster.servers });
    const p = createOracle("sdbox");
    nats.oracles.push(p);
    try {
      const { stale, current, lastSeq } = await staleAndCurrentWriters(conn, p.location, "t-rename-fence");
      const lastBefore = await lastSeq();
      await expect(stale.renameMailbox("Box", "Renamed")).rejects.toBeInstanceOf(ReplicationFencedError);
      await expect(stale.deleteMailbox("Box")).rejects.toBeInstanceOf(ReplicationFencedError);
      expect(await sortedNames(stale)).toEqual(["Box"]);
      expect(await lastSeq()).toBe(lastBefore);
      // The writer that owns the subject still can.
      await current.renameMailbox("Box", "Renamed");
      expect(await sortedNames(current)).toEqual(["Renamed"]);
      expect(await lastSeq()).toBe(lastBefore + 1);
      await stale.close();
      await current.close();
    } finally {
      await conn.close();
    }
  });

  it("CLI: mailbox rename and delete with --replicate reach `replica --once`", async () => {
    const p = createOracle("sdbox");
    const r = createOracle("maildir");
    nats.oracles.push(p, r);
    const urls = nats.cluster.servers.join(",");
    const { cli, save: saveCli, replicate } = replicationCli(urls, "cli-rename");
    const save = (mailbox: string, body: string) => saveCli(p.location, mailbox, body);
    await cli(p.location, ...replicate, "mailbox", "create", "Drafts", "Junk");
    await save("Drafts", sampleMessage(1));
    await save("Junk", sampleMessage(2));
    await cli(p.location, ...replicate, "mailbox", "rename", "Drafts", "Notes");
    await cli(p.location, ...replicate, "mailbox", "delete", "Junk");
    await save("Notes", sampleMessage(3));
    const out = (await cli(r.location, "replica", "--from", urls, "--storage-id", "cli-rename", "--once", "--json")).trim().split("\n");
    expect(JSON.parse(out[out.length - 1])).toMatchObject({ lag: 0 });
    await expectSameForDoveadm(r, p, ["Notes"]);
    expect((await r.mailboxList()).sort()).toEqual(["INBOX", "Notes"]);
  });
}, { doveadm: true });
