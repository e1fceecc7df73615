/**
 * A publish made under a mailbox's log lock outside a commit (a seed, the
 * follower's publish of what doveadm appended) does not hold mdbox's map
 * lock, which is storage-wide: while its JetStream publish is held back
 * (a gate in front of the connection's real publish), doveadm saves to
 * another mailbox of the store, which needs the map lock, and finishes.
 */
import { expect, it } from "vitest";
import { openStorage } from "../../../src/index.js";
import { mailboxSubject, Publisher, replicatedCommitHooks, type ReplicationConnection } from "../../../src/replication/index.js";
import { sampleMessage, type DovecotOracle } from "../../helpers/dovecot.js";
import { describeNats, useNatsCluster } from "../../helpers/nats.js";
import { saveSamples as save } from "../../helpers/replication.js";

/** How long doveadm's save may take while the publish is held (it waits for the map lock much longer). */
const SAVE_DEADLINE_MS = 10_000;

/**
 * Holds every JetStream publish of `conn` from now on until `release()`:
 * `held` resolves when the first one is waiting.
 */
function gatePublishes(conn: ReplicationConnection): { held: Promise<void>; release(): void } {
  const js = conn.js;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let entered!: () => void;
  const held = new Promise<void>((resolve) => (entered = resolve));
  const publish: typeof js.publish = async (...args) => {
    entered();
    await released;
    return js.publish(...args);
  };
  Object.defineProperty(conn, "js", { value: Object.assign(Object.create(js) as typeof js, { publish }), configurable: true });
  return { held, release };
}

/** doveadm saves a message to `mailbox` of `o` within SAVE_DEADLINE_MS, or the test fails naming `what`. */
async function doveadmSavesMeanwhile(o: DovecotOracle, mailbox: string, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`doveadm save -m ${mailbox} did not finish within ${SAVE_DEADLINE_MS} ms while ${what} was publishing: it waited for the map lock`)), SAVE_DEADLINE_MS);
  });
  const saved = o.save(mailbox, sampleMessage(77));
  try {
    await Promise.race([saved, late]);
  } finally {
    clearTimeout(timer);
    // On failure the save goes on once the publish is let through: not left running past the test.
    void saved.catch(() => undefined);
  }
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
}, { doveadm: true });
