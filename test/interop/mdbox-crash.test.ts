/**
 * Crash test: a child process saves, copies, expunges and purges in a loop
 * and is killed with SIGKILL at a random moment, several rounds on the same
 * storage. After every kill: every message whose commit returned (and was
 * journaled) is still there byte for byte, every map record points at an
 * intact message in an existing file, and doveadm still opens the storage.
 * The seed is printed on failure; MDBOX_CRASH_SEED replays it.
 *
 * The child runs the compiled engine (dist/, `npx tsc -p .`), like the other
 * multi-process tests.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import type { MdboxStorageBackend } from "../../src/drivers/mdbox/storage-backend.js";
import { messageCount, openStorage, recordAt } from "../../src/index.js";
import { createOracle, describeInterop, type DovecotOracle } from "../helpers/dovecot.js";
import { runAndKill } from "../helpers/kill-worker.js";
import { mdboxMapProblems } from "../../campaign/crash/mdbox-map.js";

const REPO = path.resolve(__dirname, "../..");
const ROUNDS = Number(process.env.MDBOX_CRASH_ROUNDS ?? 8);

/** The message with id `id`: deterministic, so the parent can check the bytes. */
function body(id: number): string {
  return `From: crash@test\nSubject: crash ${id}\nMessage-ID: <${id}@crash.test>\n\n` + `line of message ${id}\n`.repeat(5 + (id % 97));
}

const WORKER = `
import * as fs from "node:fs";
import { openStorage } from "${REPO}/dist/src/index.js";
const [root, journalPath, seedText] = process.argv.slice(2);
let seed = Number(seedText) >>> 0;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
${body.toString()}
const journal = fs.openSync(journalPath, "a");
const note = (line) => { fs.writeSync(journal, line + "\\n"); fs.fsyncSync(journal); };
const storage = openStorage("mdbox:" + root);
storage.backend.settings.rotateSizeBytes = 4096;
const live = new Map(); // id -> {mailbox, uid}
for (const line of fs.readFileSync(journalPath, "utf8").split("\\n")) {
  const [verb, id, mailbox, uid] = line.split(" ");
  if (verb === "saved") live.set(Number(id), { mailbox, uid: Number(uid) });
  if (verb === "expunging") live.delete(Number(id));
}
let next = Number(seedText) * 1000;
process.stdout.write("ready\\n");
for (;;) {
  const r = rand();
  if (r < 0.55 || live.size < 3) {
    const mailbox = rand() < 0.7 ? "INBOX" : "Other";
    const box = await storage.openMailbox(mailbox);
    const ids = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => next++);
    const tx = box.transaction();
    for (const id of ids) tx.append({ body: body(id) });
    const { appendedUids } = await tx.commit();
    ids.forEach((id, i) => note("saved " + id + " " + mailbox + " " + appendedUids[i]));
    ids.forEach((id, i) => live.set(id, { mailbox, uid: appendedUids[i] }));
    await box.close();
  } else if (r < 0.7) {
    const [id, where] = [...live][Math.floor(rand() * live.size)];
    const src = await storage.openMailbox(where.mailbox);
    const dst = await storage.openMailbox(where.mailbox === "INBOX" ? "Other" : "INBOX");
    await src.transaction().copyTo(dst, [{ uid1: where.uid, uid2: where.uid }]);
    await src.close(); await dst.close();
  } else if (r < 0.9) {
    const [id, where] = [...live][Math.floor(rand() * live.size)];
    note("expunging " + id);
    live.delete(id);
    const box = await storage.openMailbox(where.mailbox);
    await box.transaction().expunge([{ uid1: where.uid, uid2: where.uid }]).commit();
    await box.close();
  } else {
    await storage.backend.purge();
  }
}
`;

describeInterop("mdbox crash safety (SIGKILL during saves, copies, expunges, purges)", () => {
  let o: DovecotOracle;
  beforeEach(() => {
    o = createOracle("mdbox");
  });
  afterEach(async () => {
    await o.cleanup();
  });

  it(`${ROUNDS} rounds: nothing committed is lost, the map never points at missing data, doveadm opens the storage`, async () => {
    const built = path.join(REPO, "dist/src/drivers/mdbox/storage-backend.js");
    expect(fs.existsSync(built), "run `npx tsc -p .` first: the crash worker runs dist/").toBe(true);
    const seed = Number(process.env.MDBOX_CRASH_SEED ?? Date.now() % 100_000);
    const workerPath = path.join(o.dir, "crash-worker.mjs");
    const journal = path.join(o.dir, "journal");
    fs.writeFileSync(workerPath, WORKER);
    fs.writeFileSync(journal, "");
    const bootstrap = openStorage(o.location);
    await bootstrap.createMailbox("Other");
    await bootstrap.close();

    for (let round = 0; round < ROUNDS; round++) {
      const roundSeed = seed * 100 + round + 1;
      const rand = ((roundSeed * 2654435761) >>> 0) / 2 ** 32;
      const stderr = await runAndKill(workerPath, [o.root, journal, String(roundSeed)], { killAfterMs: 80 + Math.floor(rand * 600) });
      expect(stderr, `worker failed before the kill, seed ${seed} round ${round}`).toBe("");
      await verify(o, journal, `seed ${seed} round ${round}`);
    }
    // Afterwards both purges run clean over what the crashes left, and nothing goes missing.
    const storage = openStorage(o.location);
    const purged = await (storage.backend as MdboxStorageBackend).purge();
    await storage.close();
    expect(purged.corruptFileIds, `seed ${seed}`).toEqual([]);
    await o.chownRoot();
    await o.purge();
    await verify(o, journal, `seed ${seed} after both purges`);
    o.assertNoStderrProblems();
  }, 180_000);
});

async function verify(o: DovecotOracle, journal: string, where: string): Promise<void> {
  // Messages whose commit returned and was not followed by an expunge.
  const expected = new Map<number, string>();
  for (const line of fs.readFileSync(journal, "utf8").split("\n")) {
    const [verb, id, mailbox] = line.split(" ");
    if (verb === "saved") expected.set(Number(id), mailbox);
    if (verb === "expunging") expected.delete(Number(id));
  }
  const storage = openStorage(o.location);
  const found = new Map<number, { mailbox: string; text: string }>();
  try {
    for (const mailbox of ["INBOX", "Other"]) {
      const box = await storage.openMailbox(mailbox);
      const state = await box.refresh();
      for (let seq = 1; seq <= messageCount(state); seq++) {
        const uid = recordAt(state, seq)!.uid;
        const text = Buffer.from(await box.readMessage(uid)).toString("latin1");
        const id = Number(/Subject: crash (\d+)/.exec(text)![1]);
        if (!found.has(id) || found.get(id)!.mailbox !== expected.get(id)) found.set(id, { mailbox, text });
      }
      await box.close();
    }
  } finally {
    await storage.close();
  }
  for (const [id, mailbox] of expected) {
    expect(found.get(id)?.mailbox, `${where}: message ${id} in ${mailbox}`).toBe(mailbox);
    expect(found.get(id)!.text, `${where}: message ${id} bytes`).toBe(body(id));
  }

  // Every map record points at an intact message of an existing file.
  expect(await mdboxMapProblems(o.root), where).toEqual([]);

  // doveadm opens it and sees at least what was committed.
  await o.chownRoot();
  const seen = new Set<number>();
  for (const mailbox of ["INBOX", "Other"]) {
    for (const r of await o.fetch("uid hdr.subject", ["mailbox", mailbox, "all"])) seen.add(Number(/crash (\d+)/.exec(r["hdr.subject"] ?? r.hdr ?? "")?.[1]));
  }
  for (const id of expected.keys()) expect(seen.has(id), `${where}: doveadm sees message ${id}`).toBe(true);
  expect(o.lastStderrProblems(), where).toEqual([]);
}
