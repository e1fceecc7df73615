/**
 * Mailbox create, rename and delete in `local` commit mode go through the
 * outbox (one file per subject, the mailbox GUID) and reach replicas in
 * order with the mailbox's commits: commits made before a rename and still
 * in the outbox are published under the old name, before the rename, so
 * they land on the right replica mailbox. doveadm on the replica shows
 * what it shows on the primary. A process SIGKILLed after its local
 * creates, renames and commits, while the stream has no quorum (nothing
 * published), leaves them in the outbox; the next process publishes them.
 * The CLI's `--commit-mode local` publishes creates and renames too.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { openStorage, type Storage } from "../../../src/index.js";
import { Outbox, Publisher } from "../../../src/replication/index.js";
import { describeNats, useNatsCluster } from "../../helpers/nats.js";
import { catchUpOnce, closeAndCompareInDoveadm, expectSameStores, localModeStorage, portableState, replicationCli, saveSamples as save } from "../../helpers/replication.js";
import { WorkerProcess } from "../../helpers/worker-process.js";

const WORKER = fileURLToPath(new URL("../../workers/tree-worker.mjs", import.meta.url));

describeNats("replication: mailbox create, rename and delete in local mode", () => {
  const nats = useNatsCluster();

  it("everything still in the outbox at once (commits before and after renames, a deleted mailbox), then live, then a rename left unnoted by a killed drain: an mdbox replica ends as the sdbox primary", async () => {
    const [p, r] = nats.newOracles("sdbox", "mdbox");
    await nats.withConnection(async (conn) => {
      const storageId = "t-local-tree";
      const outboxDir = path.join(p.dir, "outbox");
      const { storage: primary, outbox } = localModeStorage(conn, p.location, storageId, outboxDir);
      // Not attached yet: nothing drains, so the renames happen with the mailbox's commits still in the outbox.
      await primary.createMailbox("A");
      await save(primary, "A", [1, 2], ["\\Seen"]);
      await primary.renameMailbox("A", "B");
      await save(primary, "B", [3]);
      await primary.createMailbox("C");
      await save(primary, "C", [4]);
      await primary.renameMailbox("B", "E");
      await primary.renameMailbox("C", "D");
      const d = await primary.openMailbox("D");
      await d.update({ minNextUid: 30 });
      await d.close();
      await primary.createMailbox("X");
      await save(primary, "X", [5]);
      await primary.deleteMailbox("X");
      await primary.createMailbox("Empty");
      expect(fs.readdirSync(outboxDir).length, "one outbox file per subject: A/B/E, C/D, X, Empty").toBe(4);

      await outbox.attach(primary);
      await outbox.flush();
      expect(fs.readdirSync(outboxDir)).toEqual([]);

      const replicaStore = openStorage(r.location);
      const positionFile = path.join(r.dir, "replica-position.json");
      await catchUpOnce(conn, replicaStore, storageId, positionFile);
      expect((await replicaStore.listMailboxes()).sort()).toEqual(["D", "E", "Empty"]);
      await expectSameStores(replicaStore, primary, "caught up");

      // Live, drained in the background: a commit and a rename right after it, a create and a delete.
      await save(primary, "E", [6]);
      await primary.renameMailbox("E", "F");
      await save(primary, "F", [7]);
      await primary.deleteMailbox("Empty");
      await primary.createMailbox("G");
      await outbox.flush();
      await catchUpOnce(conn, replicaStore, storageId, positionFile);
      await expectSameStores(replicaStore, primary, "live");

      // A process killed after publishing a rename and before noting it: its file as it was before the drain.
      await primary.renameMailbox("G", "H");
      const [file] = fs.readdirSync(outboxDir);
      const beforeDrain = fs.readFileSync(path.join(outboxDir, file));
      await outbox.flush();
      const subjects = `${conn.names.subjectPrefix}.${storageId}.>`;
      const last = await conn.lastSequence(subjects, Date.now() + conn.timeoutMs);
      fs.writeFileSync(path.join(outboxDir, file), beforeDrain);
      const next = new Outbox(new Publisher(conn, storageId), outboxDir);
      await next.attach(primary);
      await next.flush();
      await next.close();
      expect(await conn.lastSequence(subjects, Date.now() + conn.timeoutMs), "the rename is not published twice").toBe(last);
      expect(fs.readdirSync(outboxDir)).toEqual([]);
      await catchUpOnce(conn, replicaStore, storageId, positionFile);
      await expectSameStores(replicaStore, primary, "after the rename");

      // From the stream's start: everything is there already.
      const again = await catchUpOnce(conn, replicaStore, storageId, path.join(r.dir, "from-start.json"));
      expect(again.appliedTransactions, "applied again from the stream's start").toBe(0);
      await expectSameStores(replicaStore, primary, "from the stream's start");

      await outbox.close();
      await closeAndCompareInDoveadm([primary, replicaStore], r, p, ["D", "F", "H"]);
    });
  });

  it("the primary SIGKILLed after local creates, renames, commits and a delete while the stream has no quorum: the next process publishes its outbox, and an sdbox replica ends as the mdbox primary", async () => {
    const [p, r] = nats.newOracles("mdbox", "sdbox");
    const storageId = "t-local-tree-kill";
    const outboxDir = path.join(p.dir, "outbox");
    const worker = new WorkerProcess(WORKER, { servers: nats.cluster.servers, location: p.location, storageId, outboxDir });
    try {
      await worker.until("ready", (w) => w.ready);
      // Two of the three nodes die: nothing can be published, the changes stay in the outbox.
      await nats.cluster.kill(1);
      await nats.cluster.kill(2);
      worker.send("go");
      await worker.until("done", (w) => w.lines.includes("done"));
    } finally {
      await worker.kill();
    }
    expect(fs.readdirSync(outboxDir).length, "left by the killed process: A/B/D, C, X, Empty").toBe(4);
    nats.cluster.restart(1);
    nats.cluster.restart(2);
    await nats.cluster.waitReady();
    await nats.withConnection(async (conn) => {
      const primary = openStorage(p.location);
      const outbox = new Outbox(new Publisher(conn, storageId), outboxDir);
      await outbox.attach(primary);
      await outbox.flush();
      expect(outbox.status().dirty).toEqual([]);
      expect(fs.readdirSync(outboxDir)).toEqual([]);
      await outbox.close();

      const replicaStore = openStorage(r.location);
      await catchUpOnce(conn, replicaStore, storageId, path.join(r.dir, "replica-position.json"));
      expect((await replicaStore.listMailboxes()).sort()).toEqual(["C", "D", "Empty"]);
      await expectSameStores(replicaStore, primary, "after the kill");
      await closeAndCompareInDoveadm([primary, replicaStore], r, p, ["C", "D", "Empty"]);
    });
  });

  it("CLI: mailbox create and rename with --commit-mode local reach `replica --once`", async () => {
    const [p, r] = nats.newOracles("sdbox", "maildir");
    const urls = nats.cluster.servers.join(",");
    const { cli, replicate } = replicationCli(urls, "cli-local-tree");
    // The default outbox, in the store's root (the CLI works on the store as its owner).
    const local = [...replicate, "--commit-mode", "local"];
    await cli(p.location, ...local, "mailbox", "create", "Drafts", "Sent");
    await cli(p.location, ...local, "mailbox", "rename", "Sent", "Archive");
    expect(fs.readdirSync(path.join(p.location.slice(p.location.indexOf(":") + 1), "mailstore-outbox")), "published before the CLI exits").toEqual([]);
    const out = (await cli(r.location, "replica", "--from", urls, "--storage-id", "cli-local-tree", "--once", "--json")).trim().split("\n");
    expect(JSON.parse(out[out.length - 1])).toMatchObject({ lag: 0 });
    expect((await r.mailboxList()).sort()).toEqual(["Archive", "Drafts", "INBOX"]);
    await closeAndCompareInDoveadm([], r, p, ["Archive", "Drafts"]);
  });

  it("a rename or delete that has no outbox line (a kill right after the local change): the drain finds the mailbox by its GUID, or not at all, and publishes the rename or delete", async () => {
    const [p, r] = nats.newOracles("sdbox", "mdbox");
    await nats.withConnection(async (conn) => {
      const storageId = "t-local-unnoted";
      const outboxDir = path.join(p.dir, "outbox");
      const { storage: before, outbox: first } = localModeStorage(conn, p.location, storageId, outboxDir);
      await first.attach(before);
      for (const [i, name] of ["K", "Gone", "Quiet"].entries()) {
        await before.createMailbox(name);
        await save(before, name, [i + 1]);
      }
      await first.flush();
      await first.close();
      await before.close();
      const replicaStore = openStorage(r.location);
      const positionFile = path.join(r.dir, "replica-position.json");
      await catchUpOnce(conn, replicaStore, storageId, positionFile);

      // The next process commits (left in its outbox: not attached yet); the renames and the delete are made
      // without the outbox's hooks, as a process killed between the local change and its line leaves them.
      const { storage: primary, outbox } = localModeStorage(conn, p.location, storageId, outboxDir);
      await save(primary, "K", [4]);
      await save(primary, "Gone", [5]);
      const unnoted = openStorage(p.location);
      await unnoted.renameMailbox("K", "L");
      await unnoted.deleteMailbox("Gone");
      await unnoted.renameMailbox("Quiet", "Calm");
      await unnoted.createMailbox("K"); // another mailbox under the old name
      await unnoted.close();
      await save(primary, "Calm", [6]);
      await outbox.attach(primary);
      await outbox.flush();
      await outbox.close();
      expect(fs.readdirSync(outboxDir)).toEqual([]);

      await catchUpOnce(conn, replicaStore, storageId, positionFile);
      expect((await replicaStore.listMailboxes()).sort(), "K, created without the outbox, is not published").toEqual(["Calm", "L"]);
      for (const name of ["Calm", "L"]) expect(await portableState(replicaStore, name), name).toEqual(await portableState(primary, name));
      await closeAndCompareInDoveadm([primary, replicaStore], r, p, ["Calm", "L"]);
    });
  });
}, { doveadm: true });
