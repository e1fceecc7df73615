/**
 * Issue 14: a replica shows doveadm the primary's modseqs also when the
 * primary's mailbox starts keeping a modseq per message mid-way (Dovecot's
 * modseq enable, a CONDSTORE client's first use): the replica enables them
 * at the same point of its own log, so per-message modseqs and
 * HIGHESTMODSEQ (`doveadm fetch 'uid flags modseq'`, `mailbox status
 * highestmodseq`) are equal on both, in every replica format. Enabled by the
 * engine (Mailbox.enableModseqs) between random commits, and by doveadm's
 * `fetch modseq` on an open primary (an outside write, published when
 * noticed). Random work prints its seed in the test name.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect, it } from "vitest";
import { openStorage, type Storage } from "../../../src/index.js";
import { modseqFieldOffset } from "../../../src/projections/apply-modseq.js";
import type { DovecotOracle, MailFormat } from "../../helpers/dovecot.js";
import { describeNats, useNatsCluster } from "../../helpers/nats.js";
import {
  catchUpOnce, closeAndCompareInDoveadm, expectSameDoveadmViews, expectSameStores, liveReplica, localModeStorage, randomWork, REPLICATED_MAILBOXES, replicatingStorage, saveSamples,
} from "../../helpers/replication.js";

/** Whether `mailbox` of `storage` keeps a modseq per message. */
async function keepsModseqs(storage: Storage, mailbox: string): Promise<boolean> {
  const box = await storage.openMailbox(mailbox);
  try {
    return modseqFieldOffset((await box.refresh()).extensions) >= 0;
  } finally {
    await box.close();
  }
}

async function enableModseqs(storage: Storage, mailbox: string): Promise<void> {
  const box = await storage.openMailbox(mailbox);
  try {
    expect(await box.enableModseqs(), `${mailbox}: enabled now`).toBeDefined();
    expect(await box.enableModseqs(), `${mailbox}: a second enable writes nothing`).toBeUndefined();
  } finally {
    await box.close();
  }
}

describeNats("replication: a primary's modseqs enabled mid-way, the same on the replica", () => {
  const nats = useNatsCluster();

  const pairs: Array<[MailFormat, MailFormat, number]> = [["mdbox", "maildir", 1501], ["sdbox", "mdbox", 1502], ["maildir", "sdbox", 1503], ["sdbox", "mbox", 1504]];
  for (const [from, to, seed] of pairs) {
    it(`${from} → ${to} (seed ${seed}): the engine enables them on INBOX, then on Other, between random commits; a live replica and a restart from the stream's start`, async () => {
      const [p, r] = nats.newOracles(from, to);
      await nats.withConnection(async (conn) => {
        const storageId = `t-modseqs-${from}-${to}`;
        const primary = replicatingStorage(conn, p.location, storageId);
        await primary.createMailbox("Other");
        const steps = await randomWork(primary, seed, 12);
        // The replica follows live from here: it applies each enable as it comes.
        const live = await liveReplica(conn, r, storageId);
        await enableModseqs(primary, "INBOX");
        steps.push("INBOX: enable modseqs", ...(await randomWork(primary, seed + 100, 12)));
        await enableModseqs(primary, "Other");
        steps.push("Other: enable modseqs", ...(await randomWork(primary, seed + 200, 12)));
        await live.replica.caughtUp();
        expect(live.replica.status().error).toBeUndefined();
        await live.replica.stop();
        for (const name of REPLICATED_MAILBOXES) expect(await keepsModseqs(live.store, name), `replica ${name} keeps modseqs`).toBe(true);
        await expectSameStores(live.store, primary, `steps:\n${steps.join("\n")}`);

        // From the stream's start again: nothing applied twice, the enables included.
        const positionFile = path.join(r.dir, "replica-position.json");
        fs.writeFileSync(positionFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(positionFile, "utf8")), streamSeq: 0 }));
        expect((await catchUpOnce(conn, live.store, storageId, positionFile)).appliedTransactions).toBe(0);
        await expectSameStores(live.store, primary, "after a restart from the stream's start");
        await primary.close();
        await live.store.close();
        await expectSameDoveadmViews(r, p, REPLICATED_MAILBOXES, { guids: to !== "mbox" });
        p.assertNoStderrProblems();
        r.assertNoStderrProblems();
      });
    });
  }

  it("a replica started afterwards (sdbox → Maildir) applies the enable in its place in the backlog", async () => {
    const [p, r] = nats.newOracles("sdbox", "maildir");
    await nats.withConnection(async (conn) => {
      const storageId = "t-modseqs-backlog";
      const primary = replicatingStorage(conn, p.location, storageId);
      await primary.createMailbox("Other");
      await randomWork(primary, 1505, 10);
      await enableModseqs(primary, "INBOX");
      await randomWork(primary, 1506, 10);
      const replicaStore = openStorage(r.location);
      await catchUpOnce(conn, replicaStore, storageId, path.join(r.dir, "replica-position.json"));
      expect(await keepsModseqs(replicaStore, "INBOX")).toBe(true);
      expect(await keepsModseqs(replicaStore, "Other")).toBe(false);
      await expectSameStores(replicaStore, primary, "backlog");
      await closeAndCompareInDoveadm([primary, replicaStore], r, p, REPLICATED_MAILBOXES);
    });
  });

  for (const mode of ["replicated", "local"] as const) {
    const [from, to]: [MailFormat, MailFormat] = mode === "replicated" ? ["mdbox", "maildir"] : ["sdbox", "mdbox"];
    it(`doveadm's \`fetch modseq\` on an open primary (${mode} mode, ${from} → ${to}) is published when noticed; the modseqs after it are the primary's`, async () => {
      const [p, r] = nats.newOracles(from, to);
      await nats.withConnection(async (conn) => {
        const storageId = `t-modseqs-doveadm-${mode}`;
        const local = mode === "local" ? localModeStorage(conn, p.location, storageId, path.join(p.dir, "outbox")) : undefined;
        const primary = local?.storage ?? replicatingStorage(conn, p.location, storageId);
        await local?.outbox.attach(primary);
        await saveSamples(primary, "INBOX", [1, 2, 3]);
        // Open, as a server keeps it for its clients: the engine follows the log.
        const inbox = await primary.openMailbox("INBOX");
        await inbox.transaction().flags([{ uid1: 2, uid2: 2 }], "add", ["\\Seen"]).commit();
        await local?.outbox.flush();
        const live = await liveReplica(conn, r, storageId);
        expect(await keepsModseqs(live.store, "INBOX")).toBe(false);

        // A CONDSTORE client's first use, through doveadm: it writes Dovecot's enable to the primary's log.
        await p.chownRoot();
        await p.fetch("uid modseq", ["mailbox", "INBOX", "all"]);
        expect(await keepsModseqs(primary, "INBOX"), "doveadm enabled them on the primary").toBe(true);
        await live.until(() => keepsModseqs(live.store, "INBOX"), "after doveadm's modseq enable");

        // Changes after the enable give messages modseqs of their own, which the replica must count alike.
        await inbox.transaction().flags([{ uid1: 1, uid2: 1 }], "add", ["\\Flagged"]).commit();
        await inbox.transaction().flags([{ uid1: 3, uid2: 3 }], "add", ["$Label1"]).commit();
        await local?.outbox.flush();
        await live.converges(primary, "after commits past the enable");
        expect(live.replica.status().error).toBeUndefined();
        await live.replica.stop();
        await inbox.close();
        await local?.outbox.close();
        await primary.close();
        await live.store.close();
        await expectSameDoveadmViews(r, p, ["INBOX"]);
        p.assertNoStderrProblems();
        r.assertNoStderrProblems();
      });
    });
  }
});
