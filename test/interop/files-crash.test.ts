/**
 * Crash test for sdbox and Maildir (mdbox and mbox have their own): a child
 * process saves, flags and expunges in a loop and is killed with SIGKILL at
 * a random moment, several rounds on the same storage. After every kill:
 * every message whose commit returned (journaled) is there exactly once,
 * byte for byte, with the \Seen flag a returned commit set; a save that was
 * interrupted may or may not have survived, whole; doveadm opens the storage
 * without complaint and sees the same. The seed is printed in every failure
 * message; FILES_CRASH_SEED replays it.
 *
 * The child runs the compiled engine (dist/), like the other multi-process tests.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, expect, it } from "vitest";
import { MailFlag } from "../../src/log/types.js";
import { messageCount, openStorage, recordAt } from "../../src/index.js";
import { createOracle, describeInterop, parseFlags, type DovecotOracle } from "../helpers/dovecot.js";
import { runAndKill } from "../helpers/kill-worker.js";
import { inspectLeftoverDotlocks } from "../../campaign/crash/dotlocks.js";

const REPO = path.resolve(__dirname, "../..");
const ROUNDS = Number(process.env.FILES_CRASH_ROUNDS ?? 6);

/** The message with id `id`: deterministic, so the parent can check the bytes. */
function body(id: number): string {
  return `From: crash@test\nSubject: crash ${id}\nMessage-ID: <${id}@crash.test>\n\n` + `line of message ${id}\n`.repeat(5 + (id % 97));
}

const WORKER = `
import * as fs from "node:fs";
import { openStorage } from "${REPO}/dist/src/index.js";
const [location, journalPath, seedText] = process.argv.slice(2);
let seed = Number(seedText) >>> 0;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
${body.toString()}
const journal = fs.openSync(journalPath, "a");
const note = (line) => { fs.writeSync(journal, line + "\\n"); fs.fsyncSync(journal); };
const storage = openStorage(location);
const box = await storage.openMailbox("INBOX");
const live = new Map(); // id -> uid
for (const line of fs.readFileSync(journalPath, "utf8").split("\\n")) {
  const [verb, id, uid] = line.split(" ");
  if (verb === "saved") live.set(Number(id), Number(uid));
  if (verb === "expunging") live.delete(Number(id));
}
let next = Number(seedText) * 1000;
process.stdout.write("ready\\n");
for (;;) {
  const r = rand();
  if (r < 0.55 || live.size < 3) {
    const ids = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => next++);
    const tx = box.transaction();
    for (const id of ids) tx.append({ body: body(id) });
    const { appendedUids } = await tx.commit();
    ids.forEach((id, i) => { note("saved " + id + " " + appendedUids[i]); live.set(id, appendedUids[i]); });
  } else if (r < 0.8) {
    const [id, uid] = [...live][Math.floor(rand() * live.size)];
    await box.transaction().flags([{ uid1: uid, uid2: uid }], "add", ["\\\\Seen"]).commit();
    note("seen " + id);
  } else {
    const [id, uid] = [...live][Math.floor(rand() * live.size)];
    note("expunging " + id);
    live.delete(id);
    await box.transaction().expunge([{ uid1: uid, uid2: uid }]).commit();
  }
}
`;

describeInterop("sdbox and Maildir crash safety (SIGKILL during saves, flag changes, expunges)", () => {
  let o: DovecotOracle | undefined;
  afterEach(async () => {
    await o?.cleanup();
    o = undefined;
  });

  for (const format of ["sdbox", "maildir"] as const) {
    it(`${format}: ${ROUNDS} rounds, nothing committed lost or doubled, doveadm reads it`, async () => {
      o = createOracle(format);
      expect(fs.existsSync(path.join(REPO, "dist/src/index.js")), "run `npm run build` first: the crash worker runs dist/").toBe(true);
      const seed = Number(process.env.FILES_CRASH_SEED ?? Date.now() % 100_000);
      const workerPath = path.join(o.dir, "crash-worker.mjs");
      const journal = path.join(o.dir, "journal");
      fs.writeFileSync(workerPath, WORKER);
      fs.writeFileSync(journal, "");
      let leftLocks = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const roundSeed = seed * 100 + round + 1;
        const where = `${format} seed ${seed} round ${round}`;
        const rand = ((roundSeed * 2654435761) >>> 0) / 2 ** 32;
        const stderr = await runAndKill(workerPath, [o.location, journal, String(roundSeed)], { killAfterMs: 50 + Math.floor(rand * 500) });
        expect(stderr, `worker failed before the kill, ${where}`).toBe("");
        const locks = inspectLeftoverDotlocks(o.root);
        expect(locks.problems, `${where}: locks left by the kill`).toEqual([]);
        leftLocks += locks.left;
        await verify(o, journal, where);
      }
      console.log(`${format} crash: ${ROUNDS} kills, ${leftLocks} left a dotlock behind (each naming the dead worker)`);
      o.assertNoStderrProblems();
    }, 120_000);
  }
});

async function verify(o: DovecotOracle, journal: string, where: string): Promise<void> {
  // Committed and not expunged since; and those a returned commit marked \Seen.
  const expected = new Set<number>();
  const seen = new Set<number>();
  for (const line of fs.readFileSync(journal, "utf8").split("\n")) {
    const [verb, id] = line.split(" ");
    if (verb === "saved") expected.add(Number(id));
    if (verb === "seen") seen.add(Number(id));
    if (verb === "expunging") expected.delete(Number(id));
  }
  const storage = openStorage(o.location);
  const count = new Map<number, number>();
  try {
    const box = await storage.openMailbox("INBOX");
    const state = await box.refresh();
    for (let seq = 1; seq <= messageCount(state); seq++) {
      const r = recordAt(state, seq)!;
      const text = Buffer.from(await box.readMessage(r.uid)).toString("latin1");
      const id = Number(/Subject: crash (\d+)/.exec(text)![1]);
      expect(text, `${where}: message ${id} is whole`).toBe(body(id));
      count.set(id, (count.get(id) ?? 0) + 1);
      if (expected.has(id) && seen.has(id)) expect(r.flags & MailFlag.SEEN, `${where}: message ${id} \\Seen`).toBe(MailFlag.SEEN);
    }
    await box.close();
  } finally {
    await storage.close();
  }
  for (const id of expected) expect(count.get(id), `${where}: message ${id} exactly once`).toBe(1);

  await o.chownRoot();
  const rows = await o.fetch("flags hdr.subject", ["mailbox", "INBOX", "all"]);
  const theirs = new Map<number, string[]>();
  for (const r of rows) theirs.set(Number(/crash (\d+)/.exec(r["hdr.subject"] ?? "")?.[1]), parseFlags(r.flags));
  for (const id of expected) {
    expect(theirs.has(id), `${where}: doveadm sees message ${id}`).toBe(true);
    if (seen.has(id)) expect(theirs.get(id), `${where}: doveadm sees ${id} \\Seen`).toContain("\\Seen");
  }
  expect(o.lastStderrProblems(), where).toEqual([]);
}
