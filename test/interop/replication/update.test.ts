/**
 * Mailbox.update (a raised next UID, a UIDVALIDITY changed after the
 * create) reaches replicas in both commit modes, in order with the
 * mailbox's commits: the update is a log transaction (one HEADER_UPDATE,
 * no modseq change) shipped as log bytes like any commit, and the replica
 * repeats it with its own driver. doveadm on the replica shows the
 * primary's UIDVALIDITY and UIDNEXT. A fenced writer's update is refused
 * with nothing written or published.
 */
import * as path from "node:path";
import { expect, it } from "vitest";
import { getHeader, openStorage, type Storage } from "../../../src/index.js";
import { ReplicationFencedError } from "../../../src/shared/errors.js";
import { Replica } from "../../../src/replication/index.js";
import { describeNats, useNatsCluster } from "../../helpers/nats.js";
import { catchUpOnce, closeAndCompareInDoveadm, expectSameStores, localModeStorage, replicatingStorage, saveSamples as save, staleAndCurrentWriters } from "../../helpers/replication.js";

async function update(storage: Storage, name: string, u: { uidValidity?: number; minNextUid?: number }): Promise<void> {
  const box = await storage.openMailbox(name);
  try {
    await box.update(u);
  } finally {
    await box.close();
  }
}

async function nextUidOf(storage: Storage, name: string): Promise<number> {
  const box = await storage.openMailbox(name);
  try {
    return getHeader(await box.refresh()).nextUid;
  } finally {
    await box.close();
  }
}

/** The primary's work: updates before, between and after commits, on a mailbox with messages and on an empty one. */
async function work(primary: Storage): Promise<void> {
  await primary.createMailbox("A");
  await save(primary, "A", [1, 2]);
  await update(primary, "A", { minNextUid: 50 });
  await save(primary, "A", [3]);
  await update(primary, "A", { minNextUid: 70 });
  await primary.createMailbox("B");
  await update(primary, "B", { uidValidity: 4242, minNextUid: 20 });
  await primary.createMailbox("Empty");
  await update(primary, "Empty", { minNextUid: 9 });
}

describeNats("replication: Mailbox.update", () => {
  const nats = useNatsCluster();

  it("replicated mode: an mdbox replica of an sdbox primary has its next UIDs and UIDVALIDITY, live and restarted from the stream's start", async () => {
    const [p, r] = nats.newOracles("sdbox", "mdbox");
    await nats.withConnection(async (conn) => {
      const storageId = "t-update";
      const primary = replicatingStorage(conn, p.location, storageId);
      await work(primary);
      expect(await nextUidOf(primary, "A")).toBe(70);
      const replicaStore = openStorage(r.location);
      const positionFile = path.join(r.dir, "replica-position.json");
      const replica = await Replica.start(conn, replicaStore, { storageId, positionFile });
      await replica.caughtUp();
      await expectSameStores(replicaStore, primary, "caught up");
      // Live: an update, then a save under the raised next UID.
      await update(primary, "B", { minNextUid: 30 });
      await save(primary, "B", [4]);
      await update(primary, "A", { minNextUid: 90 });
      await replica.caughtUp();
      expect(replica.status().error).toBeUndefined();
      await replica.stop();
      await expectSameStores(replicaStore, primary, "live");
      expect(await nextUidOf(replicaStore, "A")).toBe(90);

      // From the stream's start: the updates are there already; nothing changes.
      const again = await catchUpOnce(conn, replicaStore, storageId, path.join(r.dir, "from-start.json"));
      expect(again.appliedTransactions, "applied again from the stream's start").toBe(0);
      await expectSameStores(replicaStore, primary, "from the stream's start");
      await closeAndCompareInDoveadm([primary, replicaStore], r, p, ["A", "B", "Empty"]);
    });
  });

  it("local mode: the outbox publishes the updates; a Maildir replica has them", async () => {
    const [p, r] = nats.newOracles("mdbox", "maildir");
    await nats.withConnection(async (conn) => {
      const storageId = "t-update-local";
      const { storage: primary, outbox } = localModeStorage(conn, p.location, storageId, path.join(p.dir, "outbox"));
      await outbox.attach(primary);
      await work(primary);
      await outbox.flush();
      const replicaStore = openStorage(r.location);
      await catchUpOnce(conn, replicaStore, storageId, path.join(r.dir, "replica-position.json"));
      await outbox.close();
      // Maildir lists INBOX always; the primary's mailboxes are the replica's.
      for (const name of ["A", "B", "Empty"]) expect(await nextUidOf(replicaStore, name), name).toBe(await nextUidOf(primary, name));
      await closeAndCompareInDoveadm([primary, replicaStore], r, p, ["A", "B", "Empty"]);
    });
  });

  it("a fenced writer's update fails with ReplicationFencedError: nothing written locally, nothing published", async () => {
    const [p] = nats.newOracles("sdbox");
    await nats.withConnection(async (conn) => {
      const { stale, current, lastSeq } = await staleAndCurrentWriters(conn, p.location, "t-update-fence");
      const lastBefore = await lastSeq();
      const nextBefore = await nextUidOf(stale, "Box");
      await expect(update(stale, "Box", { minNextUid: 100 })).rejects.toBeInstanceOf(ReplicationFencedError);
      expect(await nextUidOf(stale, "Box")).toBe(nextBefore);
      expect(await lastSeq()).toBe(lastBefore);
      await stale.close();
      await current.close();
    });
  });
}, { doveadm: true });
