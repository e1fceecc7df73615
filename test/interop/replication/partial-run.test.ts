/**
 * A replica's run of queued commits that fails partway (a body missing
 * from the object store) records as applied only the commits that reached
 * the replica's log: the position file's per-mailbox sequence (what
 * promote's takeover expects the stream to hold) stops before the failing
 * commit, and the replica has the messages of the commits before it,
 * files included (sdbox: each save's file, kept as the log refers to it).
 * And a run whose step finds the replica diverged ends the save of the
 * step before (in the log: kept; mbox: its write locks released) and says
 * where in the replica's log.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect, it } from "vitest";
import { MailstoreError, openStorage } from "../../../src/index.js";
import { messageCount } from "../../../src/projections/read.js";
import { mailboxSubject, Publisher, readReplicaPosition, Replica, replicatedCommitHooks, type ReplicationConnection } from "../../../src/replication/index.js";
import { writePosition } from "../../../src/replication/position-file.js";
import { sampleMessage } from "../../helpers/dovecot.js";
import { describeNats, useNatsCluster } from "../../helpers/nats.js";

/**
 * One replicated commit per body to the INBOX of a primary at `location`.
 * @returns each commit's stream sequence, and the GUIDs of INBOX's messages by UID.
 */
async function commitEach(conn: ReplicationConnection, location: string, storageId: string, bodies: readonly string[]): Promise<{ seqs: number[]; guids: Map<number, string> }> {
  const primary = openStorage(location, { commitHooks: replicatedCommitHooks(new Publisher(conn, storageId), { followExternal: false }) });
  const inbox = await primary.openMailbox("INBOX");
  const subject = mailboxSubject(conn.names, storageId, inbox.guid()!);
  const seqs: number[] = [];
  for (const body of bodies) {
    await inbox.transaction().append({ body }).commit();
    seqs.push(await conn.lastSequence(subject, Date.now() + conn.timeoutMs));
  }
  const guids = new Map<number, string>();
  for await (const m of inbox.fetch(bodies.map((_, i) => i + 1), ["guid"])) guids.set(m.uid, m.guid);
  await primary.close();
  return { seqs, guids };
}

describeNats("replication: a run that fails partway records what landed", () => {
  const nats = useNatsCluster();

  it("sdbox → sdbox: a missing body in the run's 4th commit", async () => {
    const [p, r] = nats.newOracles("sdbox", "sdbox");
    await nats.withConnection(async (conn) => {
      const storageId = "t-partial-run";
      // The 4th body is above the inline budget: it travels through the object store.
      const bodies = [0, 1, 2, 3, 4, 5].map((i) => sampleMessage(3100 + i, i === 3 ? { minSize: 700 * 1024 } : {}));
      const { seqs, guids } = await commitEach(conn, p.location, storageId, bodies);
      const bucket = await conn.js.views.os(conn.names.bodyBucket);
      await bucket.delete(guids.get(4)!);

      const replicaStore = openStorage(r.location);
      const positionFile = path.join(r.dir, "replica-position.json");
      const replica = await Replica.start(conn, replicaStore, { storageId, positionFile });
      await expect(replica.caughtUp()).rejects.toThrow(/not in object store/);
      await replica.stop();
      const box = await replicaStore.openMailbox("INBOX");
      const count = messageCount(await box.refresh());
      await replicaStore.close();
      expect(count, "the commits before the failing one are in the replica's log").toBe(3);
      expect(readReplicaPosition(positionFile)?.appliedSeqs.INBOX, "INBOX's applied sequence: the 3rd commit's").toBe(seqs[2]);
      const files = fs.readdirSync(path.join(r.root, "mailboxes/INBOX/dbox-Mails")).filter((f) => f.startsWith("u."));
      expect(files.sort()).toEqual(["u.1", "u.2", "u.3"]);
      r.assertNoStderrProblems();
    });
  });

  it("sdbox → mbox: a replica started past the first commits diverges at the run's 2nd step", async () => {
    const [p, r] = nats.newOracles("sdbox", "mbox");
    await nats.withConnection(async (conn) => {
      const storageId = "t-diverged-run";
      const { seqs } = await commitEach(conn, p.location, storageId, [0, 1, 2, 3, 4].map((i) => sampleMessage(3200 + i)));

      // The replica's position says it applied the first two commits; its store has none of them.
      const positionFile = path.join(r.dir, "replica-position.json");
      writePosition(positionFile, { streamSeq: seqs[1], stream: conn.names.stream, storageId, mailboxes: {}, appliedSeqs: {} });
      const replicaStore = openStorage(r.location);
      const replica = await Replica.start(conn, replicaStore, { storageId, positionFile });
      const err = await replica.caughtUp().then(() => undefined, (e: unknown) => e);
      // The first step's save ended: no write lock left on the mbox the failed replica still has open.
      const locked = fs.existsSync(path.join(r.root, "inbox.lock"));
      await replica.stop();
      expect(locked, "the mbox dotlock").toBe(false);
      expect(err).toBeInstanceOf(MailstoreError);
      expect((err as MailstoreError).message).toMatch(/diverged/);
      expect((err as MailstoreError).fileSeq, "the replica's log position").toBeGreaterThan(0);
      expect((err as MailstoreError).offset).toBeGreaterThan(0);
      const box = await replicaStore.openMailbox("INBOX");
      const count = messageCount(await box.refresh());
      await replicaStore.close();
      expect(count, "the first step's message is in the replica's log and mbox").toBe(1);
      expect(readReplicaPosition(positionFile)?.appliedSeqs.INBOX, "INBOX's applied sequence: that step's commit").toBe(seqs[2]);
    });
  });
});
