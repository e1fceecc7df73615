/**
 * The engine and Dovecot working on the same mbox at the same time: a child
 * process (running as the mail uid, like doveadm) saves, flags and expunges
 * (each expunge rewrites the file) through the engine while doveadm saves
 * and flags in parallel. Nothing may be lost or duplicated, and both must
 * end up seeing the same mailbox. This test found two real problems: a
 * deadlock when the engine took the dotlock before fcntl (Dovecot's order
 * is the reverse), and lost Dovecot saves when expunge replaced the file
 * (a Dovecot process waiting on the old inode wrote into it) — hence the
 * in-place rewrite. A LockTimeoutError would be retried by the child and
 * counted.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { createOracle, describeInterop, ORACLE_GID, ORACLE_UID, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";
import { flagNames, messageCount, openStorage, recordAt } from "../../src/index.js";

const REPO = path.resolve(__dirname, "../..");
const SECONDS = Number(process.env.MBOX_CONCURRENT_SECONDS ?? 4);

const WORKER = `
import { openStorage } from "${REPO}/dist/src/index.js";
const [location, seconds] = process.argv.slice(2);
const storage = openStorage(location);
const box = await storage.openMailbox("INBOX");
const end = Date.now() + Number(seconds) * 1000;
let n = 0, timeouts = 0;
const saved = [];
const expunged = [];
while (Date.now() < end) {
  try {
    const st = await box.refresh();
    const r = n % 4;
    if (r === 0 || st.records.count < 3) {
      await box.transaction().append({ body: "From: engine@test\\nSubject: engine " + n + "\\n\\nbody " + n + "\\n", flags: ["ekw" + (n % 3)] }).commit();
      saved.push("engine " + n);
    } else if (r === 1 || r === 2) {
      const uid = st.records.uidAt(n % st.records.count);
      await box.transaction().flags([{ uid1: uid, uid2: uid }], n % 2 ? "add" : "remove", ["\\\\Seen", "ekw" + (n % 3)]).commit();
    } else if (n % 8 === 3) {
      // Expunge one of our own messages: a rewrite while doveadm may be waiting for the lock.
      const ours = [];
      for (let i = 0; i < st.records.count; i++) {
        const uid = st.records.uidAt(i);
        const text = Buffer.from(await box.readMessage(uid)).toString();
        const m = /^Subject: (engine \\d+)$/m.exec(text);
        if (m) ours.push([uid, m[1]]);
      }
      if (ours.length > 0) {
        const [uid, subject] = ours[n % ours.length];
        await box.transaction().expunge([{ uid1: uid, uid2: uid }]).commit();
        expunged.push(subject);
      }
    } else {
      await box.transaction().flags([{ uid1: 1, uid2: 4294967295 }], "add", ["\\\\Answered"]).commit();
    }
    n++;
  } catch (err) {
    if (err.code !== "LOCK_TIMEOUT") throw err;
    timeouts++;
    // Let the process we gave way to take the log lock (fcntl wakes waiters without fairness).
    await new Promise((r) => setTimeout(r, 50));
  }
}
await box.refresh();
await storage.close();
process.stdout.write(JSON.stringify({ saved, expunged, timeouts, ops: n }) + "\\n");
`;

describeInterop("mbox: the engine and doveadm writing at the same time", () => {
  let o: DovecotOracle;
  beforeEach(() => {
    o = createOracle("mbox");
  });
  afterEach(async () => {
    await o.cleanup();
  });

  it("loses and duplicates nothing, and both end up with the same view", async () => {
    const workerPath = path.join(o.dir, "worker.mjs");
    fs.writeFileSync(workerPath, WORKER);
    await o.save("INBOX", sampleMessage(0));
    const child = spawn(process.execPath, [workerPath, o.location, String(SECONDS)], {
      uid: ORACLE_UID,
      gid: ORACLE_GID,
      cwd: o.dir,
      env: { PATH: process.env.PATH, HOME: o.dir },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const exited = new Promise<number | null>((r) => child.on("exit", r));

    const ours: string[] = [];
    const end = Date.now() + SECONDS * 1000;
    for (let i = 1; Date.now() < end; i++) {
      await o.save("INBOX", sampleMessage(i, { subject: `dovecot ${i}` }));
      ours.push(`dovecot ${i}`);
      await o.flags(i % 2 ? "add" : "remove", "\\Flagged dkw", ["mailbox", "INBOX", "uid", `${1 + (i % 5)}:*`]);
    }
    expect(await exited, err).toBe(0);
    const result = JSON.parse(out) as { saved: string[]; expunged: string[]; timeouts: number; ops: number };
    console.log(
      `mbox concurrent: engine ${result.ops} operations (${result.saved.length} saves, ${result.expunged.length} expunges, ${result.timeouts} lock timeouts retried), ` +
        `doveadm ${ours.length} saves`,
    );

    const rows = await o.fetch("uid flags hdr.subject", ["mailbox", "INBOX", "all"]);
    const subjects = rows.map((r) => r["hdr.subject"]).filter((s) => !s.startsWith("Test message 0"));
    const gone = new Set(result.expunged);
    expect([...subjects].sort()).toEqual([...ours, ...result.saved.filter((x) => !gone.has(x))].sort());

    const storage = openStorage(o.location);
    const box = await storage.openMailbox("INBOX");
    const st = await box.refresh();
    const engineView = [];
    for (let seq = 1; seq <= messageCount(st); seq++) {
      const r = recordAt(st, seq)!;
      engineView.push({ uid: String(r.uid), flags: [...flagNames(r.flags & 0x1f), ...r.keywords].sort().join(" ") });
    }
    await box.close();
    await storage.close();
    expect(engineView).toEqual(rows.map((r) => ({ uid: r.uid, flags: r.flags.split(" ").filter((f) => f && f !== "\\Recent").sort().join(" ") })));
    o.assertNoStderrProblems();
  }, 120_000);
});
