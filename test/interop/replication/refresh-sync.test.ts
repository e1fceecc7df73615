/**
 * Changes others make to a Maildir primary's files (an MDA's delivery into
 * new/, a flag renamed into a file name) are logged by the engine's next
 * refresh, and published then, not only with the next commit: a replica
 * has them after the primary refreshed, with nothing committed. With the
 * stream unreachable, the refresh still succeeds, and the next commit
 * publishes what it logged.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { NatsError } from "nats";
import { expect, it } from "vitest";
import { openStorage, type Storage } from "../../../src/index.js";
import { ReplicationConnection } from "../../../src/replication/index.js";
import { describeNats, useNatsCluster } from "../../helpers/nats.js";
import { catchUpOnce, closeAndCompareInDoveadm, expectSameStores, replicatingStorage, saveSamples as save } from "../../helpers/replication.js";
import { sampleMessage } from "../../helpers/dovecot.js";

/** Delivers `body` into `mailDir`'s new/ as an MDA does (tmp/, then a rename). */
function deliver(mailDir: string, name: string, body: string): void {
  fs.writeFileSync(path.join(mailDir, "tmp", name), body);
  fs.renameSync(path.join(mailDir, "tmp", name), path.join(mailDir, "new", name));
}

/** Asks until the stream answers with a leader (its election after the restart is over): commits are acknowledged again. */
async function untilStreamHasLeader(conn: ReplicationConnection): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await conn.jsm.streams.info(conn.names.stream)).cluster?.leader) return;
    } catch (err) {
      if (!(err instanceof NatsError) || Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new Error("the stream has no leader 30 s after the restart");
  }
}

async function refresh(storage: Storage, mailbox: string): Promise<void> {
  const box = await storage.openMailbox(mailbox);
  try {
    await box.refresh();
  } finally {
    await box.close();
  }
}

describeNats("replication: a refresh publishes what it logged of others' changes to the mail files", () => {
  const nats = useNatsCluster();

  it("an MDA's deliveries into a Maildir primary reach an sdbox replica after the primary's refresh, with no commit", async () => {
    const [p, r] = nats.newOracles("maildir", "sdbox");
    await nats.withConnection(async (conn) => {
      const storageId = "t-refresh";
      const primary = replicatingStorage(conn, p.location, storageId);
      await save(primary, "INBOX", [1]);
      deliver(p.root, "1700000000.M1P1.mda", sampleMessage(2));
      deliver(p.root, "1700000001.M2P1.mda", sampleMessage(3));
      await refresh(primary, "INBOX");
      const replicaStore = openStorage(r.location);
      const positionFile = path.join(r.dir, "replica-position.json");
      await catchUpOnce(conn, replicaStore, storageId, positionFile);
      await expectSameStores(replicaStore, primary, "after the refresh");
      await closeAndCompareInDoveadm([primary, replicaStore], r, p, ["INBOX"]);
    });
  });

  it("with the stream unreachable the refresh succeeds, and the next commit publishes what it logged", async () => {
    const [p, r] = nats.newOracles("maildir", "mdbox");
    // A short acknowledgement timeout: the refresh's publish without quorum gives up sooner.
    const conn = await ReplicationConnection.open({ servers: nats.cluster.servers, timeoutMs: 2000 });
    try {
      const storageId = "t-refresh-down";
      const primary = replicatingStorage(conn, p.location, storageId);
      await save(primary, "INBOX", [1]);
      // Two of the three nodes down: the stream has no quorum, a publish gets no acknowledgement.
      await nats.cluster.kill(1);
      await nats.cluster.kill(2);
      try {
        deliver(p.root, "1700000002.M3P1.mda", sampleMessage(4));
        await refresh(primary, "INBOX");
      } finally {
        nats.cluster.restart(1);
        nats.cluster.restart(2);
        await nats.cluster.waitReady();
        await untilStreamHasLeader(conn);
      }
      await save(primary, "INBOX", [5]);
      const replicaStore = openStorage(r.location);
      await catchUpOnce(conn, replicaStore, storageId, path.join(r.dir, "replica-position.json"));
      await expectSameStores(replicaStore, primary, "after the next commit");
      await closeAndCompareInDoveadm([primary, replicaStore], r, p, ["INBOX"]);
    } finally {
      await conn.close();
    }
  });
});
