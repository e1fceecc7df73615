/**
 * Crash test: a child process expunges messages from a few-MB mbox (each
 * expunge rewrites the rest of the file in place, here in 64 KiB windows so
 * that a kill lands between many writes) and changes flags (header writes)
 * in a loop, and is killed with SIGKILL at a random moment, many rounds on
 * the same mailbox. After every kill: the mbox parses into whole messages,
 * none twice, every message that was never asked to be expunged is still
 * there byte for byte — as doveadm fetches it and as the engine reads it —
 * and doveadm reads the mailbox without complaint (it breaks the dead
 * process's dotlock by itself). A kill in the middle of a write that spans
 * pages can cut it short; the engine's next writer redoes it from the redo
 * journal, so after such a kill the engine looks first.
 * The seed is printed on failure; MBOX_CRASH_SEED replays it.
 *
 * The child runs the compiled engine (dist/, `npx tsc -p .`), like the other
 * multi-process tests.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { decodeRedoRecord, MBOX_REDO_JOURNAL } from "../../src/drivers/mbox/redo-journal.js";
import { parseMbox } from "../../src/drivers/mbox/scan.js";
import { openStorage, messageCount, recordAt, type Storage } from "../../src/index.js";
import { createOracle, describeInterop, type DovecotOracle } from "../helpers/dovecot.js";
import { runAndKill } from "../helpers/kill-worker.js";

const REPO = path.resolve(__dirname, "../..");
const ROUNDS = Number(process.env.MBOX_CRASH_ROUNDS ?? 16);
const MESSAGES = 120;

/** Message `id`: deterministic bytes; every third is a "victim" the child may expunge. */
function body(id: number): string {
  const victim = id % 3 === 0 ? "victim" : "keeper";
  const filler = `filler line of message ${id}, to make the file big enough to kill a rewrite midway\n`.repeat(400 + (id % 50) * 20);
  return `From: crash@test\nSubject: ${victim} ${id}\nMessage-ID: <${id}@crash.test>\n\nFrom the body of ${id}\n>From quoted\n${filler}From someone@example.com Thu Nov 29 22:33:52 2001\nend\n`;
}

const WORKER = `
import { Storage } from "${REPO}/dist/src/index.js";
import { resolveMailLocation } from "${REPO}/dist/src/drivers/location-detect.js";
import { MboxStorageBackend } from "${REPO}/dist/src/drivers/mbox/storage-backend.js";
const [location, seedText] = process.argv.slice(2);
let seed = Number(seedText) >>> 0;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
function open() {
  // Built directly, to give the rewrite small windows.
  const loc = resolveMailLocation(location, { home: process.env.HOME, env: {} });
  return new Storage(loc, new MboxStorageBackend(loc.root, { inbox: loc.inbox, mailbox: { rewriteWindowBytes: 64 * 1024 } }), {});
}
const storage = open();
const box = await storage.openMailbox("INBOX");
await box.refresh();
process.stdout.write("ready\\n");
for (;;) {
  const st = await box.refresh();
  const victims = [];
  for (let seq = 1; seq <= st.records.count; seq++) {
    const uid = st.records.uidAt(seq - 1);
    if (uid % 3 === 0) victims.push(uid);
  }
  if (rand() < 0.6 && victims.length > 0) {
    const uid = victims[Math.floor(rand() * victims.length)];
    await box.transaction().expunge([{ uid1: uid, uid2: uid }]).commit();
  } else {
    const uid = st.records.uidAt(Math.floor(rand() * st.records.count));
    const kws = Array.from({ length: Math.floor(rand() * 6) }, (_, i) => "kw" + i);
    await box.transaction().flags([{ uid1: uid, uid2: uid }], "replace", [rand() < 0.5 ? "\\\\Seen" : "\\\\Flagged", ...kws]).commit();
  }
}
`;

describeInterop("mbox crash safety: SIGKILL during expunge rewrites and flag writes", () => {
  let o: DovecotOracle;
  let storage: Storage;
  let workerPath: string;
  beforeEach(() => {
    o = createOracle("mbox");
    storage = openStorage(o.location);
    workerPath = path.join(o.dir, "worker.mjs");
    fs.writeFileSync(workerPath, WORKER);
  });
  afterEach(async () => {
    await storage.close();
    await o.cleanup();
  });

  /** Kills after `killAfterMs`, or, with `whenExists`, as soon as that file appears (a rewrite in progress) plus a little. */
  async function kill(seed: number, killAfterMs: number, whenExists?: string): Promise<void> {
    const err = await runAndKill(workerPath, [o.location, String(seed)], { killAfterMs, ...(whenExists ? { whenExists } : {}), env: { ...process.env, HOME: o.dir } });
    if (err.trim() !== "") throw new Error(`worker failed: ${err}`);
  }

  it("loses no message and leaves an mbox that doveadm and the engine read", async () => {
    const seed = Number(process.env.MBOX_CRASH_SEED ?? Date.now() % 100000);
    let s = seed;
    const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    try {
      const box = await storage.openMailbox("INBOX");
      await box.refresh();
      for (let id = 1; id <= MESSAGES; id += 20) {
        const tx = box.transaction();
        for (let j = id; j < id + 20; j++) tx.append({ body: body(j) });
        await tx.commit();
      }
      await box.close();
      const keepers = new Map<number, string>();
      for (let id = 1; id <= MESSAGES; id++) if (id % 3 !== 0) keepers.set(id, body(id));
      const inbox = path.join(o.root, "inbox");
      expect(fs.statSync(inbox).size).toBeGreaterThan(5_000_000);

      const caught = { dotlock: 0, cutWrite: 0 };
      const journal = path.join(o.root, "mail", ".imap", "INBOX", MBOX_REDO_JOURNAL);
      expect(fs.existsSync(path.dirname(journal)), "the journal's directory (INBOX's index directory)").toBe(true);
      for (let round = 0; round < ROUNDS; round++) {
        // Every other round aims at a write: killed a few ms after the mbox is dotlocked.
        if (round % 2 === 1) await kill(seed + round, Math.floor(rand() * 40), inbox + ".lock");
        else await kill(seed + round, 30 + Math.floor(rand() * 400));
        // How often the kill hit a write (the dotlock still there).
        if (fs.existsSync(inbox + ".lock")) caught.dotlock++;
        // A write the kill may have cut short (SIGKILL cuts writes at page boundaries): its
        // record is in the redo journal, and the engine's next writer writes it again first.
        const journalRecord = () => (fs.existsSync(journal) ? decodeRedoRecord(fs.readFileSync(journal)) : undefined);
        const cutWrite = journalRecord() !== undefined;
        if (cutWrite) caught.cutWrite++;
        // The mbox parses as whole messages whatever the moment of the kill (once a cut write is redone).
        const parsesWhole = () => {
          const parsed = parseMbox(fs.readFileSync(inbox));
          const uids = parsed.messages.filter((m) => !m.pseudo).map((m) => m.uid);
          for (const uid of keepers.keys()) expect(uids).toContain(uid);
          expect(new Set(uids).size, "no message twice").toBe(uids.length);
        };
        if (!cutWrite) parsesWhole();

        await o.chownRoot();
        // After a cut write the engine looks first: Dovecot, finding the file torn, would do what it
        // does after its own crash mid-rewrite (renumber what follows the tear).
        const engineFirst = cutWrite || round % 2 === 1;
        const engineCheck = async () => {
          const b = await storage.openMailbox("INBOX");
          const st = await b.refresh();
          const seen = new Set<number>();
          for (let seq = 1; seq <= messageCount(st); seq++) {
            const uid = recordAt(st, seq)!.uid;
            seen.add(uid);
            const text = Buffer.from(await b.readMessage(uid)).toString("latin1");
            expect(text).toBe(body(uid));
          }
          for (const uid of keepers.keys()) expect(seen.has(uid)).toBe(true);
          await b.close();
          await o.chownRoot();
        };
        if (engineFirst) await engineCheck();
        if (cutWrite) {
          expect(journalRecord(), "the engine's next writer replayed and voided the record").toBeUndefined();
          parsesWhole();
        }
        const rows = await o.fetch("uid", ["mailbox", "INBOX", "all"]);
        const theirs = new Set(rows.map((r) => Number(r.uid)));
        for (const uid of keepers.keys()) expect(theirs.has(uid)).toBe(true);
        for (const uid of [...keepers.keys()].filter((_, i) => i % 10 === round % 10)) {
          expect((await o.fetchText("INBOX", uid)).toString("latin1")).toBe(body(uid));
        }
        if (!engineFirst) await engineCheck();
      }
      console.log(`mbox crash: ${ROUNDS} kills, ${caught.dotlock} while holding the mbox lock, ${caught.cutWrite} during a journaled write`);
      // A kill after a rewrite moved messages but before the log recorded their new offsets
      // leaves the index behind the file. When doveadm looks first, it notices on its own
      // (the dirty flag we keep set makes it check each message it seeks to), says so, and
      // resyncs — the same it says after its own crash mid-rewrite; the bytes it then
      // serves were checked above.
      o.assertNoStderrProblems([/Next message unexpectedly corrupted in mbox file/, /Cached message offset \d+ is invalid for mbox/]);
    } catch (err) {
      // The seed goes into the failure itself: reporters keep that, not console output.
      if (err instanceof Error) err.message = `[MBOX_CRASH_SEED=${seed}] ${err.message}`;
      throw err;
    }
  }, 300_000);
});
