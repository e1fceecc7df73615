/**
 * A replica started after a backlog of one mailbox's commits applies them
 * in runs (consecutive commits of a mailbox in one replica commit, each
 * primary transaction still one log transaction with its own modseq):
 * fewer applied reports than stream messages, and the result is the
 * primary's, for `replay --json` (its format-independent part) and for
 * doveadm (status, `fetch 'uid flags guid modseq'` and text); a restart
 * from the stream's start applies nothing twice.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect, it } from "vitest";
import { openStorage, type Storage } from "../../../src/index.js";
import { messageCount, recordAt } from "../../../src/projections/read.js";
import { Publisher, Replica, replicatedCommitHooks } from "../../../src/replication/index.js";
import { sampleMessage, type MailFormat } from "../../helpers/dovecot.js";
import { describeNats, useNatsCluster } from "../../helpers/nats.js";
import { catchUpOnce, expectSameDoveadmViews, expectSameStores } from "../../helpers/replication.js";

/** `count` commits to INBOX: saves, flag and keyword changes, expunges, and copies from Other. */
async function backlog(primary: Storage, count: number): Promise<void> {
  const inbox = await primary.openMailbox("INBOX");
  const other = await primary.openMailbox("Other");
  await other.transaction().append({ body: sampleMessage(900) }).append({ body: sampleMessage(901), flags: ["\\Seen"] }).commit();
  try {
    for (let i = 0; i < count; i++) {
      const uids: number[] = [];
      for (let seq = 1; seq <= messageCount(inbox.state); seq++) uids.push(recordAt(inbox.state, seq)!.uid);
      const pick = (k: number) => ({ uid1: uids[k % uids.length], uid2: uids[k % uids.length] });
      const tx = inbox.transaction();
      if (uids.length < 3 || i % 4 === 0) tx.append({ body: sampleMessage(i), flags: i % 3 === 0 ? ["\\Flagged", "todo"] : [] });
      else if (i % 4 === 1) tx.flags([pick(i)], i % 8 === 1 ? "add" : "remove", ["\\Seen", `$Label${i % 3}`]);
      else if (i % 4 === 2 && i % 12 === 2) tx.expunge([pick(i)]);
      else if (i % 4 === 2) tx.flags([pick(i + 1)], "replace", ["\\Answered"]);
      else {
        await other.transaction().copyTo(inbox, [{ uid1: 1, uid2: 2 }]);
        continue;
      }
      await tx.commit();
    }
  } finally {
    await inbox.close();
    await other.close();
  }
}

describeNats("replication: a replica applies a mailbox's backlog in runs", () => {
  const nats = useNatsCluster();

  for (const format of ["maildir", "sdbox", "mbox"] satisfies MailFormat[]) {
    it(`mdbox → ${format}`, async () => {
      const [p, r] = nats.newOracles("mdbox", format);
      await nats.withConnection(async (conn) => {
        const storageId = `t-runs-${format}`;
        const primary = openStorage(p.location, { commitHooks: replicatedCommitHooks(new Publisher(conn, storageId), { followExternal: false }) });
        await primary.createMailbox("Other");
        await backlog(primary, 60);

        const replicaStore = openStorage(r.location);
        const positionFile = path.join(r.dir, "replica-position.json");
        let reports = 0;
        const replica = await Replica.start(conn, replicaStore, { storageId, positionFile, onApplied: () => reports++ });
        await replica.caughtUp();
        const status = replica.status();
        await replica.stop();
        expect(status.error).toBeUndefined();
        expect(reports, "one report per run of queued commits, not per stream message").toBeLessThan(status.appliedSeq - 1);
        await expectSameStores(replicaStore, primary, `mdbox → ${format}`);

        // From the stream's start again: every transaction is there already.
        fs.rmSync(positionFile);
        const again = await catchUpOnce(conn, replicaStore, storageId, positionFile);
        expect(again.appliedTransactions).toBe(0);
        await expectSameStores(replicaStore, primary, `mdbox → ${format}, again`);
        await primary.close();
        await replicaStore.close();
        await expectSameDoveadmViews(r, p, ["INBOX", "Other"], { guids: format !== "mbox" });
        p.assertNoStderrProblems();
        r.assertNoStderrProblems();
      });
    });
  }
}, { doveadm: true });
