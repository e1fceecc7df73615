/**
 * A publish made under a mailbox's log lock outside a commit (a seed, the
 * follower's publish of what doveadm appended) does not hold mdbox's map
 * lock, which is storage-wide: while its JetStream publish is held back
 * (a gate in front of the connection's real publish), doveadm saves to
 * another mailbox of the store, which needs the map lock, and finishes.
 * Nor does a replicated commit's own publish: while the first of two
 * commits to different mailboxes waits for its ack, the second (a save,
 * which takes the map lock) commits and is published; and a purge made
 * meanwhile is published after the held expunge it reclaims.
 */
import { expect, it } from "vitest";
import { openStorage } from "../../../src/index.js";
import { mailboxSubject, Publisher, replicatedCommitHooks, replicatedStorageHooks, storageSubject, type ReplicationConnection } from "../../../src/replication/index.js";
import { sampleMessage, type DovecotOracle } from "../../helpers/dovecot.js";
import { describeNats, useNatsCluster } from "../../helpers/nats.js";
import { finishesMeanwhile, gatePublishes } from "../../helpers/nats-gates.js";
import { saveSamples as save } from "../../helpers/replication.js";

/** doveadm saves a message to `mailbox` of `o` within MEANWHILE_DEADLINE_MS, or the test fails naming `what`. */
async function doveadmSavesMeanwhile(o: DovecotOracle, mailbox: string, what: string): Promise<void> {
  await finishesMeanwhile(o.save(mailbox, sampleMessage(77)), `doveadm save -m ${mailbox} (it waited for the map lock while ${what} was publishing)`);
}

/** Stream sequence of the last message on the subject of mailbox GUID `guid`. */
function lastSeqOf(conn: ReplicationConnection, storageId: string, guid: string): Promise<number> {
  return conn.lastSequence(mailboxSubject(conn.names, storageId, guid), Date.now() + conn.timeoutMs);
}

describeNats("replication: a publish under the log lock leaves mdbox's map lock to others", () => {
  const nats = useNatsCluster();

  it("a seed: doveadm saves to another mailbox while the seed's publish waits", async () => {
    const [p] = nats.newOracles("mdbox");
    await nats.withConnection(async (conn) => {
      const plain = openStorage(p.location);
      await plain.createMailbox("Other");
      await save(plain, "INBOX", [1, 2, 3]);
      await plain.close();
      await p.chownRoot();
      // doveadm's first save here also brings its list index up to date, which syncs INBOX (its log lock, held by the seed below).
      await p.save("Other", sampleMessage(76));

      const publisher = new Publisher(conn, "t-maplock-seed");
      const primary = openStorage(p.location, { commitHooks: replicatedCommitHooks(publisher) });
      const inbox = await primary.openMailbox("INBOX");
      const gate = gatePublishes(conn);
      const seeding = publisher.seed(inbox);
      try {
        await gate.held;
        await doveadmSavesMeanwhile(p, "Other", "the seed of INBOX");
      } finally {
        gate.release();
      }
      expect(await seeding, "INBOX seeded").toBe(true);
      await inbox.close();
      await primary.close();
    });
  });

  it("the follower: doveadm saves to another mailbox while the publish of another writer's flags waits", async () => {
    const [p] = nats.newOracles("mdbox");
    await nats.withConnection(async (conn) => {
      const failures: Error[] = [];
      const publisher = new Publisher(conn, "t-maplock-follow");
      const primary = openStorage(p.location, { commitHooks: replicatedCommitHooks(publisher, { onFollowError: (err) => failures.push(err) }) });
      await primary.createMailbox("Other");
      const inbox = await primary.openMailbox("INBOX");
      await inbox.transaction().append({ body: sampleMessage(1) }).commit();
      await p.chownRoot();
      // doveadm's first save here also brings its list index up to date, which syncs INBOX (its log lock, held by the follower below).
      await p.save("Other", sampleMessage(76));

      const before = await lastSeqOf(conn, "t-maplock-follow", inbox.guid()!);
      const gate = gatePublishes(conn);
      // Another writer's flags, from a storage without hooks: the follower publishes them. Not
      // doveadm's: its flags command takes INBOX's log lock more than once, and a follower that
      // noticed its first append holds that lock through the publish this test keeps waiting, so
      // doveadm would wait for it and the test for doveadm (a deadlock only the gate makes).
      // Not awaited before the gate holds a publish: the follower may be publishing a late write of
      // doveadm's to INBOX already (its list index sync), under the log lock this commit waits for.
      const other = openStorage(p.location);
      const flagged = (async () => {
        const otherInbox = await other.openMailbox("INBOX");
        await otherInbox.transaction().flags([{ uid1: 1, uid2: 1 }], "add", ["\\Flagged"]).commit();
      })();
      try {
        await gate.held;
        await doveadmSavesMeanwhile(p, "Other", "the follower's publish of INBOX");
      } finally {
        gate.release();
      }
      await flagged;
      await other.close();
      // The close waits for the follower's publish under way.
      const guid = inbox.guid()!;
      await inbox.close();
      await primary.close();
      expect(failures).toEqual([]);
      expect(await lastSeqOf(conn, "t-maplock-follow", guid), "the other writer's flags published").toBeGreaterThan(before);
    });
  });

  it("a commit's own publish: a save to another mailbox commits and is published while the first commit waits for its ack; a purge meanwhile is published after the expunge it reclaims", async () => {
    const [p] = nats.newOracles("mdbox");
    await nats.withConnection(async (conn) => {
      const storageId = "t-maplock-commit";
      const publisher = new Publisher(conn, storageId);
      const primary = openStorage(p.location, { commitHooks: replicatedCommitHooks(publisher, { followExternal: false }), storageHooks: replicatedStorageHooks(publisher) });
      await primary.createMailbox("Other");
      const inbox = await primary.openMailbox("INBOX");
      const other = await primary.openMailbox("Other");
      await save(primary, "INBOX", [1, 2]);
      await save(primary, "Other", [3]);

      // INBOX's save holds its log lock until JetStream acknowledges it, as the fencing order wants; the map lock it lets go.
      let gate = gatePublishes(conn, { onlyFirst: true });
      const first = inbox.transaction().append({ body: sampleMessage(4) }).commit();
      await gate.held;
      const second = await finishesMeanwhile(other.transaction().append({ body: sampleMessage(5) }).commit(), "a save to Other (it needs the map lock)");
      const otherSeq = await lastSeqOf(conn, storageId, other.guid()!);
      gate.release();
      const firstDone = await first;
      const inboxSeq = await lastSeqOf(conn, storageId, inbox.guid()!);
      expect(otherSeq, "Other's commit was stored before INBOX's, which waited").toBeLessThan(inboxSeq);
      expect(firstDone.end).toEqual(inbox.position);
      expect(second.end).toEqual(other.position);

      // An expunge whose publish is held, then a purge: it reclaims the expunged message (the map lock is free) and waits for that
      // publish before its own. In Other: the purge's fencing check opens INBOX (the storage subject's writer is named by its GUID).
      gate = gatePublishes(conn, { onlyFirst: true });
      const expunged = other.transaction().expunge([{ uid1: 1, uid2: 1 }]).commit();
      await gate.held;
      let purgeWaits!: () => void;
      const waiting = new Promise<void>((resolve) => (purgeWaits = resolve));
      const settled = publisher.settled.bind(publisher);
      publisher.settled = () => {
        purgeWaits();
        return settled();
      };
      const purged = primary.purge();
      await waiting;
      gate.release();
      await expunged;
      const expungeSeq = await lastSeqOf(conn, storageId, other.guid()!);
      await purged;
      const purgeSeq = await conn.lastSequence(storageSubject(conn.names, storageId), Date.now() + conn.timeoutMs);
      expect(expungeSeq, "the expunge is in the stream before the purge that reclaimed it").toBeLessThan(purgeSeq);
      await inbox.close();
      await other.close();
      await primary.close();
    });
  });
}, { doveadm: true });
