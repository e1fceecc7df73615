/**
 * Replica.lag() is exact while the replica is paused in the middle of a
 * backlog: the messages it holds (the run being applied, one put back,
 * those the client queued) plus those the server has not delivered, no
 * more and no fewer than the storage's messages after its applied
 * sequence, counted one by one in the stream. Paused twice, by a gate in
 * front of its real JetStream lookup of a subject's last message (made
 * before it applies a subject's first message): on a single message (a
 * create) and on a run of one mailbox's commits with another mailbox's
 * commit queued behind it.
 */
import * as path from "node:path";
import { expect, it } from "vitest";
import { openStorage } from "../../../src/index.js";
import { mailboxSubject, Replica } from "../../../src/replication/index.js";
import { describeNats, useNatsCluster } from "../../helpers/nats.js";
import { gateLastLookup } from "../../helpers/nats-gates.js";
import { catchUpOnce, lagFrom, replicatingStorage, saveSamples } from "../../helpers/replication.js";

describeNats("replication: a replica's lag while it is paused mid-backlog", () => {
  const nats = useNatsCluster();

  it("lag() counts every message of the storage after the applied one, on a single message and in a run", async () => {
    const [p, r] = nats.newOracles("mdbox", "maildir");
    await nats.withConnection(async (conn) => {
      const storageId = "t-lag";
      const primary = replicatingStorage(conn, p.location, storageId);
      await primary.createMailbox("Other");
      await saveSamples(primary, "INBOX", [1]);
      await saveSamples(primary, "Other", [2]);
      const replicaStore = openStorage(r.location);
      const positionFile = path.join(r.dir, "replica-position.json");
      await catchUpOnce(conn, replicaStore, storageId, positionFile);

      // The backlog: Third's create (a single message) and commits, then Other's run of 5 with INBOX's behind it.
      await primary.createMailbox("Third");
      for (let i = 0; i < 3; i++) await saveSamples(primary, "Third", [10 + i]);
      for (let i = 0; i < 5; i++) await saveSamples(primary, "Other", [20 + i]);
      for (let i = 0; i < 2; i++) await saveSamples(primary, "INBOX", [30 + i]);
      for (let i = 0; i < 3; i++) await saveSamples(primary, "Other", [40 + i]);
      const guidOf = async (name: string) => {
        const box = await primary.openMailbox(name);
        try {
          return box.guid()!;
        } finally {
          await box.close();
        }
      };
      const third = mailboxSubject(conn.names, storageId, await guidOf("Third"));
      const other = mailboxSubject(conn.names, storageId, await guidOf("Other"));

      await nats.withConnection(async (rconn) => {
        const onOther = gateLastLookup(rconn, other);
        const onThird = gateLastLookup(rconn, third);
        const replica = await Replica.start(rconn, replicaStore, { storageId, positionFile });
        try {
          await onThird.held;
          const atThird = replica.status().appliedSeq;
          const expected = await lagFrom(conn, storageId, atThird);
          expect(expected, "the whole backlog").toBe(1 + 3 + 5 + 2 + 3);
          expect(await replica.lag(), `paused on Third's create, applied ${atThird}`).toBe(expected);
          onThird.release();

          await onOther.held;
          const atOther = replica.status().appliedSeq;
          expect(await replica.lag(), `paused on Other's run, applied ${atOther}`).toBe(await lagFrom(conn, storageId, atOther));
          expect(await replica.lag(), "Other's run, INBOX's and Other's last commits").toBe(5 + 2 + 3);
          onOther.release();

          await replica.caughtUp();
          expect(await replica.lag()).toBe(0);
          expect(replica.status().lag).toBe(0);
          expect(replica.status().error).toBeUndefined();
        } finally {
          onThird.release();
          onOther.release();
          await replica.stop();
        }
      });
      await primary.close();
      await replicaStore.close();
    });
  });
});
