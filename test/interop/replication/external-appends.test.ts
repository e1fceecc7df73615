/**
 * What another program appends to a primary's mailbox log outside the
 * primary's commits (doveadm's flag changes and expunges) is published by
 * the running primary as soon as it notices the append (the same log watch
 * change streams use), not with the mailbox's next commit: a replica
 * converges with nothing committed on the primary after doveadm ran, in
 * replicated mode and through local mode's outbox, also for a mailbox the
 * primary process only has open (followed from its open).
 */
import * as path from "node:path";
import { expect, it } from "vitest";
import type { DovecotOracle } from "../../helpers/dovecot.js";
import { describeNats, useNatsCluster } from "../../helpers/nats.js";
import { closeAndCompareInDoveadm, expectSameStores, liveReplica, localModeStorage, replicatingStorage, saveSamples as save } from "../../helpers/replication.js";

/** doveadm flags messages of the primary's INBOX (its own log appends), while `primary` has it open. */
async function doveadmWrites(p: DovecotOracle): Promise<void> {
  await p.chownRoot();
  await p.flags("add", "\\Flagged $Doveadm", ["mailbox", "INBOX", "uid", "1:2"]);
}

describeNats("replication: a primary publishes what others append to its logs when it notices it", () => {
  const nats = useNatsCluster();

  it("replicated mode (mdbox → Maildir): doveadm's flags and expunge reach the replica with no commit after them", async () => {
    const [p, r] = nats.newOracles("mdbox", "maildir");
    await nats.withConnection(async (conn) => {
      const storageId = "t-external";
      const primary = replicatingStorage(conn, p.location, storageId);
      await save(primary, "INBOX", [1, 2, 3]);
      // The primary keeps INBOX open, as a server does: its engine watches the log.
      const inbox = await primary.openMailbox("INBOX");
      await inbox.transaction().flags([{ uid1: 3, uid2: 3 }], "add", ["\\Seen"]).commit();
      const live = await liveReplica(conn, r, storageId);

      await doveadmWrites(p);
      await live.converges(primary, "after doveadm's flags");
      await p.expunge(["mailbox", "INBOX", "uid", "2"]);
      await live.converges(primary, "after doveadm's expunge");
      expect(live.replica.status().error).toBeUndefined();

      // The primary's own commits go on from there.
      await inbox.transaction().flags([{ uid1: 1, uid2: 1 }], "add", ["\\Answered"]).commit();
      await live.replica.caughtUp();
      await live.replica.stop();
      await inbox.close();
      await expectSameStores(live.store, primary, "after a commit");
      await closeAndCompareInDoveadm([primary, live.store], r, p, ["INBOX"]);
    });
  });

  it("local mode (sdbox → mdbox): doveadm's flags are marked in the outbox and drained", async () => {
    const [p, r] = nats.newOracles("sdbox", "mdbox");
    await nats.withConnection(async (conn) => {
      const storageId = "t-external-local";
      const { storage: primary, outbox } = localModeStorage(conn, p.location, storageId, path.join(p.dir, "outbox"));
      await outbox.attach(primary);
      await save(primary, "INBOX", [4, 5]);
      const inbox = await primary.openMailbox("INBOX");
      await inbox.transaction().flags([{ uid1: 1, uid2: 1 }], "add", ["\\Seen"]).commit();
      await outbox.flush();
      const live = await liveReplica(conn, r, storageId);

      await doveadmWrites(p);
      await live.converges(primary, "after doveadm's flags");
      expect(live.replica.status().error).toBeUndefined();
      await live.replica.stop();
      await inbox.close();
      await outbox.close();
      await expectSameStores(live.store, primary, "after doveadm's flags");
      await closeAndCompareInDoveadm([primary, live.store], r, p, ["INBOX"]);
    });
  });

  it("a mailbox this process only opened (replicated mode, sdbox → Maildir, and local mode, mdbox → sdbox): doveadm's flags reach the replica", async () => {
    const [p, r, pLocal, rLocal] = nats.newOracles("sdbox", "maildir", "mdbox", "sdbox");
    await nats.withConnection(async (conn) => {
      for (const [o, replicaOracle, mode] of [[p, r, "replicated"], [pLocal, rLocal, "local"]] as const) {
        const storageId = `t-external-open-${mode}`;
        const outboxDir = path.join(o.dir, "outbox");
        const open = () => (mode === "replicated" ? { storage: replicatingStorage(conn, o.location, storageId), outbox: undefined } : localModeStorage(conn, o.location, storageId, outboxDir));
        // An earlier process committed and published INBOX.
        const earlier = open();
        await earlier.outbox?.attach(earlier.storage);
        await save(earlier.storage, "INBOX", [6, 7]);
        await earlier.outbox?.flush();
        await earlier.storage.close();
        await earlier.outbox?.close();

        // This one opens INBOX, as a server does for a reading client, and commits nothing.
        const { storage: primary, outbox } = open();
        await outbox?.attach(primary);
        const inbox = await primary.openMailbox("INBOX");
        const live = await liveReplica(conn, replicaOracle, storageId);
        await doveadmWrites(o);
        await live.converges(primary, `${mode} mode: after doveadm's flags`);
        expect(live.replica.status().error).toBeUndefined();
        await live.replica.stop();
        await inbox.close();
        await outbox?.close();
        await closeAndCompareInDoveadm([primary, live.store], replicaOracle, o, ["INBOX"]);
      }
    });
  });
}, { doveadm: true });
