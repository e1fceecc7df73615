/**
 * A MOVE killed between its copy commit and its expunge commit: Dovecot
 * (and this engine before the move intent journal) leaves the message in
 * both mailboxes. The engine's next open of the source finishes the move;
 * a move killed before its copy landed is dropped. doveadm is the judge of
 * what each mailbox holds afterwards.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, expect, it } from "vitest";
import { openStorage } from "../../src/index.js";
import { MOVE_INTENT_PREFIX } from "../../src/api/move-intent.js";
import { createOracle, describeInterop, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";
import { startReadyWorker } from "../helpers/kill-worker.js";
import type { MailFormat } from "../helpers/dovecot-oracle.js";

const REPO = path.resolve(__dirname, "../..");

/**
 * Moves INBOX uid 2 to Archive and stops for good at `stopAt`: "copied"
 * (after the copy's commit, in the target's afterCommit hook) or
 * "copying" (in the copy's beforeCommit hook, under the target's lock,
 * before anything is written). It prints "ready" there and waits to be killed.
 */
const WORKER = `
import { openStorage } from "${REPO}/dist/src/index.js";
const [location, stopAt] = process.argv.slice(2);
const hang = async (box, committed) => {
  // A refresh that logs Dovecot's files (committed.sync) is no step of the move.
  if (box.name !== "Archive" || committed?.sync) return;
  process.stdout.write("ready\\n");
  await new Promise(() => {});
};
const hooks = stopAt === "copied" ? { afterCommit: hang } : { beforeCommit: hang };
const storage = openStorage(location, { commitHooks: hooks });
const inbox = await storage.openMailbox("INBOX");
const archive = await storage.openMailbox("Archive");
await inbox.moveTo(archive, [{ uid1: 2, uid2: 2 }]);
process.stdout.write("moved without stopping\\n");
`;

describeInterop("a MOVE killed between its two commits", () => {
  let o: DovecotOracle;
  afterEach(async () => o?.cleanup());

  async function killedMove(format: MailFormat, stopAt: "copied" | "copying"): Promise<void> {
    o = createOracle(format);
    await o.mailboxCreate("Archive");
    for (const i of [1, 2, 3]) await o.save("INBOX", sampleMessage(i));
    await o.flags("add", "\\Flagged $Work", ["mailbox", "INBOX", "uid", "2"]);
    const before = await o.fetch("guid", ["mailbox", "INBOX", "uid", "2"]);
    const worker = path.join(o.dir, "move-worker.mjs");
    fs.writeFileSync(worker, WORKER);
    const { child, exited } = await startReadyWorker(worker, [o.location, stopAt]);
    child.kill("SIGKILL");
    await exited;
    const intent = path.join(o.mailboxIndexDir("INBOX"), `${MOVE_INTENT_PREFIX}0`);
    expect(fs.statSync(intent).size, "the killed move's intent").toBeGreaterThan(0);
    await o.chownRoot();
    const subjects = async (box: string) => (await o.fetch("hdr.subject", ["mailbox", box, "all"])).map((m) => m["hdr.subject"]);
    if (stopAt === "copied") {
      // Dovecot's own window: until a writer opens INBOX, the message is in both.
      expect(await subjects("Archive")).toEqual(["Test message 2"]);
      expect(await subjects("INBOX")).toEqual(["Test message 1", "Test message 2", "Test message 3"]);
    }

    const storage = openStorage(o.location);
    await storage.openMailbox("INBOX");
    await storage.close();
    expect(fs.statSync(intent).size, "the intent is cleared once the move is finished").toBe(0);
    await o.chownRoot();
    if (stopAt === "copied") {
      expect(await subjects("INBOX")).toEqual(["Test message 1", "Test message 3"]);
      const moved = await o.fetch("guid flags hdr.subject", ["mailbox", "Archive", "all"]);
      expect(moved.map((m) => [m["hdr.subject"], m.flags.replace("\\Recent ", "")])).toEqual([["Test message 2", "\\Flagged $Work"]]);
      if (format !== "mbox") expect(moved[0].guid).toBe(before[0].guid);
    } else {
      expect(await subjects("INBOX")).toEqual(["Test message 1", "Test message 2", "Test message 3"]);
      expect(await subjects("Archive")).toEqual([]);
    }
    // Dovecot can carry on with both mailboxes.
    await o.move("Archive", ["mailbox", "INBOX", "uid", "1"]);
    expect(await subjects("Archive")).toContain("Test message 1");
    o.assertNoStderrProblems();
  }

  for (const format of ["sdbox", "mdbox", "maildir", "mbox"] as const) {
    it(`${format}: killed after the copy landed, the next open of the source expunges the original`, () => killedMove(format, "copied"), 60_000);
    it(`${format}: killed before the copy landed, the next open drops the move and keeps the original`, () => killedMove(format, "copying"), 60_000);
  }
});
