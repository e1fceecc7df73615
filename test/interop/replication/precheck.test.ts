/**
 * The pre-commit fencing check's JetStream round trip (Publisher.precheck)
 * is made before the commit takes its locks: while that of a save to INBOX
 * is held (a gate in front of the connection's real request), a save to
 * another mailbox of the mdbox store, which takes the storage-wide map
 * lock, commits and is published. And a check that found the subject
 * ending with this writer's own message whose ack had not come back yet
 * (another commit of the same mailbox, publishing while the check held no
 * lock) does not fence. A first look that another caller's first look
 * beat is not judged at once.
 */
import { expect, it } from "vitest";
import { openStorage } from "../../../src/index.js";
import { mailboxSubject, Publisher, replicatedCommitHooks, type ReplicationConnection } from "../../../src/replication/index.js";
import { sampleMessage } from "../../helpers/dovecot.js";
import { describeNats, useNatsCluster } from "../../helpers/nats.js";
import { finishesMeanwhile, gateLastLookup, gatePublishes } from "../../helpers/nats-gates.js";
import { saveSamples as save } from "../../helpers/replication.js";

/** `location` opened with replicated commit hooks (no follower: only its own commits publish). */
function replicatedPrimary(conn: ReplicationConnection, location: string, storageId: string) {
  const publisher = new Publisher(conn, storageId);
  return { publisher, primary: openStorage(location, { commitHooks: replicatedCommitHooks(publisher, { followExternal: false }) }) };
}

function lastSeqOf(conn: ReplicationConnection, subject: string): Promise<number> {
  return conn.lastSequence(subject, Date.now() + conn.timeoutMs);
}

describeNats("replication: the pre-commit fencing check holds no lock during its round trip", () => {
  const nats = useNatsCluster();

  it("while INBOX's check waits for JetStream, a save to another mdbox mailbox commits and is published", async () => {
    const [p] = nats.newOracles("mdbox");
    await nats.withConnection(async (conn) => {
      const storageId = "t-precheck-maplock";
      const { primary } = replicatedPrimary(conn, p.location, storageId);
      await primary.createMailbox("Other");
      const inbox = await primary.openMailbox("INBOX");
      const other = await primary.openMailbox("Other");
      // Each subject looked up once: the checks below compare with what this writer knows.
      await save(primary, "INBOX", [1]);
      await save(primary, "Other", [2]);
      const inboxSubject = mailboxSubject(conn.names, storageId, inbox.guid()!);
      const otherSubject = mailboxSubject(conn.names, storageId, other.guid()!);
      const inboxBefore = await lastSeqOf(conn, inboxSubject);

      const gate = gateLastLookup(conn, inboxSubject);
      const first = inbox.transaction().append({ body: sampleMessage(3) }).commit();
      await gate.held;
      const second = await finishesMeanwhile(other.transaction().append({ body: sampleMessage(4) }).commit(), "a save to Other (it waited for the map lock while INBOX's fencing check was held)");
      expect(second.end).toEqual(other.position);
      const otherSeq = await lastSeqOf(conn, otherSubject);
      expect(otherSeq, "Other's save published while INBOX's check was held").toBeGreaterThan(inboxBefore);
      expect(await lastSeqOf(conn, inboxSubject), "INBOX's commit waits for its check").toBe(inboxBefore);
      gate.release();
      const firstDone = await first;
      expect(firstDone.end).toEqual(inbox.position);
      expect(await lastSeqOf(conn, inboxSubject), "INBOX's commit published after Other's").toBeGreaterThan(otherSeq);
      await inbox.close();
      await other.close();
      await primary.close();
    });
  });

  it("a check that finds this writer's own message, stored and not yet acknowledged, lets the commit through", async () => {
    const [p] = nats.newOracles("sdbox");
    await nats.withConnection(async (conn) => {
      const storageId = "t-precheck-own";
      const { publisher, primary } = replicatedPrimary(conn, p.location, storageId);
      const inbox = await primary.openMailbox("INBOX");
      await save(primary, "INBOX", [1]);
      const subject = mailboxSubject(conn.names, storageId, inbox.guid()!);
      const before = await lastSeqOf(conn, subject);

      // The first commit's message is stored; its ack is held, and with it the mailbox's log lock.
      const acks = gatePublishes(conn, { onlyFirst: true, after: true });
      const first = inbox.transaction().append({ body: sampleMessage(2) }).commit();
      await acks.held;
      expect(await lastSeqOf(conn, subject)).toBe(before + 1);
      // The second commit's check sees that message while this writer still expects `before`.
      const look = gateLastLookup(conn, subject, { after: true });
      const second = inbox.transaction().flags([{ uid1: 1, uid2: 1 }], "add", ["\\Seen"]).commit();
      await finishesMeanwhile(look.held, "the second commit's fencing check (it waited for the log lock the first commit holds)");
      acks.release();
      await first;
      look.release();
      await second;
      expect(publisher.fencedBy).toBeUndefined();
      expect(await lastSeqOf(conn, subject)).toBe(before + 2);
      await inbox.close();
      await primary.close();
    });
  });

  it("a first look that another caller's first look beat leaves the check to be made again under the locks", async () => {
    const [p] = nats.newOracles("sdbox");
    await nats.withConnection(async (conn) => {
      const storageId = "t-precheck-first-looks";
      const { primary } = replicatedPrimary(conn, p.location, storageId);
      const inbox = await primary.openMailbox("INBOX");
      await save(primary, "INBOX", [1]);
      const subject = mailboxSubject(conn.names, storageId, inbox.guid()!);
      // A writer that has not looked at the subject yet: two commits' checks both make the first look.
      const fresh = new Publisher(conn, storageId);
      const look = gateLastLookup(conn, subject, { after: true });
      const slow = fresh.precheck(inbox);
      await look.held;
      const quick = await fresh.precheck(inbox);
      look.release();
      expect(quick, "the look that set the cursor is judged at once").toMatchObject({ subject, from: await lastSeqOf(conn, subject) });
      expect(await slow, "the other's cursor is not this look's: confirmPrecheck looks again").toBeUndefined();
      await inbox.close();
      await primary.close();
    });
  });
}, { doveadm: true });
