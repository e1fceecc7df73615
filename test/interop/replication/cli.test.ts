/**
 * The replication CLI (issue 14), as a process, with a real 3-node cluster:
 * writing verbs with `--replicate` publish; `replica --once` applies the
 * stream into another format and reports lag 0; doveadm sees both stores
 * alike; `replica --promote` makes the replica the primary and the old
 * primary's next write is fenced (exit 65); `watch --nats --json` prints
 * the batches from the stream; `replica` without `--once` follows new
 * commits until Ctrl-C; a `replica` process SIGKILLed mid-catch-up and
 * started again ends at lag 0 with nothing applied twice.
 */
import { spawn } from "node:child_process";
import { expect, it } from "vitest";
import { createOracle, sampleMessage } from "../../helpers/dovecot.js";
import { describeNats, useNatsCluster } from "../../helpers/nats.js";
import { openStorage } from "../../../src/index.js";
import { closeAndCompareInDoveadm, doveadmView, expectSameReplays, randomWork, REPLICATED_MAILBOXES, replicatingStorage, replicationCli } from "../../helpers/replication.js";

describeNats("replication CLI: --replicate, replica, replica --promote, watch --nats", () => {
  const nats = useNatsCluster();
  const oracles = nats.oracles;

  it("publishes, replicates mdbox → Maildir, promotes, fences, watches", async () => {
    const p = createOracle("mdbox");
    const r = createOracle("maildir");
    oracles.push(p, r);
    const urls = nats.cluster.servers.join(",");
    const { cli, save: saveCli, replicate, env, bin } = replicationCli(urls, "cli");
    const save = (loc: string, body: string, extra: string[] = []) => saveCli(loc, "INBOX", body, extra);
    for (let i = 1; i <= 3; i++) await save(p.location, sampleMessage(i));
    await save(p.location, sampleMessage(4), ["--commit-mode", "local"]);
    await cli(p.location, ...replicate, "flags", "add", "\\Seen work", "mailbox", "INBOX", "uid", "1:2");
    await cli(p.location, ...replicate, "expunge", "mailbox", "INBOX", "uid", "3");

    const out = (await cli(r.location, "replica", "--from", urls, "--storage-id", "cli", "--once", "--json")).trim().split("\n");
    const last = JSON.parse(out[out.length - 1]);
    expect(last).toMatchObject({ lag: 0, appliedSeq: 6 });
    expect(await doveadmView(r, "INBOX")).toEqual(await doveadmView(p, "INBOX"));

    // watch --nats: every batch of INBOX from the start of the primary's log.
    const watched = await new Promise<string[]>((resolve, reject) => {
      const child = spawn(process.execPath, [bin, "watch", "--nats", urls, "--storage-id", "cli", "-m", "INBOX", "--json", "--from", "1:0"], { env });
      let text = "";
      child.stdout.on("data", (d) => {
        text += d;
        const lines = text.split("\n").filter((l) => l.includes("\"changes\""));
        if (lines.filter((l) => !l.includes("\"changes\":[]")).length >= 6) {
          child.kill("SIGTERM");
          resolve(lines);
        }
      });
      child.once("exit", (code) => reject(new Error(`watch exited ${code}: ${text}`)));
    });
    const changes = watched.map((l) => JSON.parse(l).changes).flat();
    expect(changes.filter((c: { type: string }) => c.type === "append").map((c: { uid: number }) => c.uid)).toEqual([1, 2, 3, 4]);
    expect(changes.some((c: { type: string }) => c.type === "expunge")).toBe(true);

    // Promotion: one command. Then the replica writes on, and the old primary is fenced.
    expect(await cli(r.location, "replica", "--from", urls, "--storage-id", "cli", "--promote")).toContain("promoted");
    await save(r.location, sampleMessage(5));
    const fenced = await save(p.location, sampleMessage(6)).catch((e: { code: number; stderr: string }) => e);
    expect(fenced).toMatchObject({ code: 65 });
    expect((fenced as { stderr: string }).stderr).toMatch(/mail\.cli\.[0-9a-f]{32}.*promote this store/);
  });

  it("replica without --once follows commits made while it runs, and Ctrl-C stops it with its status", async () => {
    const p = createOracle("mdbox");
    const r = createOracle("sdbox");
    oracles.push(p, r);
    const urls = nats.cluster.servers.join(",");
    const { save: saveCli, env, bin } = replicationCli(urls, "follow");
    const save = (body: string) => saveCli(p.location, "INBOX", body);
    await save(sampleMessage(1));

    const child = spawn(process.execPath, [bin, "-l", r.location, "replica", "--from", urls, "--storage-id", "follow", "--json"], { env });
    let out = "";
    let err = "";
    const applied = () => out.split("\n").filter((l) => l.includes("\"streamSeq\"")).map((l) => JSON.parse(l) as { streamSeq: number; lag: number });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    // Waits on the replica's own output: its start line on stderr, then applied messages on stdout.
    const until = (what: string, cond: () => boolean) => new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!cond()) return;
        child.stdout.off("data", check);
        child.stderr.off("data", check);
        resolve();
      };
      child.stdout.on("data", check);
      child.stderr.on("data", check);
      void exited.then((code) => reject(new Error(`replica exited (${code}) before ${what}: ${err}${out}`)));
      check();
    });
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    await until("it started", () => err.includes("replicating follow"));
    await until("it applied the first commit", () => applied().length >= 1);
    for (let i = 2; i <= 4; i++) await save(sampleMessage(i));
    await until("it applied the commits made while it ran", () => applied().length >= 4);
    expect(applied().map((a) => a.streamSeq)).toEqual([...applied().map((a) => a.streamSeq)].sort((a, b) => a - b));

    child.kill("SIGINT");
    expect(await exited).toBe(0);
    const status = JSON.parse(out.trim().split("\n").at(-1)!);
    expect(status).toMatchObject({ appliedSeq: applied().at(-1)!.streamSeq, appliedTransactions: 4 });
    expect(await doveadmView(r, "INBOX")).toEqual(await doveadmView(p, "INBOX"));
  });
  it("a replica process SIGKILLed mid-catch-up, started again with --once: lag 0, nothing applied twice, doveadm sees the primary's mailboxes (seed 1409)", async () => {
    const [p, r] = nats.newOracles("mdbox", "sdbox");
    const urls = nats.cluster.servers.join(",");
    const storageId = "cli-kill-replica";
    const { cli, env, bin } = replicationCli(urls, storageId);
    await nats.withConnection(async (conn) => {
      const primary = replicatingStorage(conn, p.location, storageId);
      await primary.createMailbox("Other");
      const steps = await randomWork(primary, 1409, 150);
      const last = await conn.lastSequence(`${conn.names.subjectPrefix}.${storageId}.>`, Date.now() + conn.timeoutMs);

      // Killed (by PID) once it reported its first applied run: in the middle of the backlog.
      const child = spawn(process.execPath, [bin, "-l", r.location, "replica", "--from", urls, "--storage-id", storageId, "--json"], { env });
      let out = "";
      let err = "";
      child.stderr.on("data", (d) => (err += d));
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (d) => {
          out += d;
          if (out.includes("\"streamSeq\"")) resolve();
        });
        void exited.then(() => reject(new Error(`replica exited before applying anything: ${err}${out}`)));
      });
      child.kill("SIGKILL");
      await exited;
      const reported = out.split("\n").filter((l) => l.includes("\"streamSeq\"")).map((l) => (JSON.parse(l) as { streamSeq: number }).streamSeq);
      expect(reported.at(-1), `killed before the end of the backlog (stream sequence ${last})`).toBeLessThan(last);

      const again = (await cli(r.location, "replica", "--from", urls, "--storage-id", storageId, "--once", "--json")).trim().split("\n");
      expect(JSON.parse(again.at(-1)!)).toMatchObject({ lag: 0, appliedSeq: last });
      const replicaStore = openStorage(r.location);
      await expectSameReplays(replicaStore, primary, REPLICATED_MAILBOXES, `steps:\n${steps.join("\n")}`);
      await closeAndCompareInDoveadm([replicaStore, primary], r, p, REPLICATED_MAILBOXES);
    });
  });
}, { doveadm: true });
