/**
 * Every change reaches every file it belongs in before the command exits or
 * commit() returns. For Maildir and mbox the index is a cache: the flags
 * live in the mail files too (Maildir file names plus dovecot-keywords; mbox
 * Status, X-Status and X-Keywords headers), and Dovecot rebuilds a lost index
 * from them. A flag change that sits only in dovecot.index.log until some
 * later sync is lost with the index, and is invisible to a Maildir/mbox
 * reader that does not read Dovecot's index.
 *
 * After each `mailstore flags …` command (and each API commit) the store is
 * copied, the copy's dovecot.index* removed, and doveadm reads the flags the
 * files alone give; they must be the flags just set. The copy keeps the
 * store itself untouched, so the next step continues on the real index. The
 * comparisons are soft: one run reports every step whose change did not
 * reach the files.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterEach, expect, it } from "vitest";
import { openStorage, type FlagAction, type Storage } from "../../src/index.js";
import { createOracle, describeInterop, sampleMessage, type DovecotOracle, type MailFormat } from "../helpers/dovecot.js";

const exec = promisify(execFile);
const bin = path.resolve(__dirname, "../../bin/mailstore.js");

/** uid → flag and keyword names, sorted. */
type FlagsByUid = Record<number, string[]>;

interface FlagStep {
  readonly action: FlagAction;
  /** Space separated, as the CLI takes them. */
  readonly flags: string;
  /** First and last UID. */
  readonly uids: readonly [number, number];
}

/** System flags and keywords, added, removed and replaced, on 3 messages saved without flags. */
const STEPS: readonly FlagStep[] = [
  { action: "add", flags: "\\Seen \\Flagged Work", uids: [2, 2] },
  { action: "remove", flags: "\\Flagged", uids: [2, 2] },
  { action: "replace", flags: "\\Answered \\Draft Later", uids: [1, 2] },
  // A keyword the mailbox has not had yet (Maildir: a new dovecot-keywords letter).
  { action: "add", flags: "Brandnew", uids: [3, 3] },
  { action: "add", flags: "\\Deleted Work", uids: [3, 3] },
  { action: "remove", flags: "Later \\Draft", uids: [1, 1] },
  // Replacing drops keywords too.
  { action: "replace", flags: "\\Seen", uids: [3, 3] },
];

const describeStep = (s: FlagStep): string => `flags ${s.action} '${s.flags}' uid ${s.uids[0]}:${s.uids[1]}`;

/** The expected flags after `step`, from those before it. */
function applyStep(before: FlagsByUid, step: FlagStep): FlagsByUid {
  const after: FlagsByUid = {};
  const names = step.flags.split(" ").filter((n) => n !== "");
  for (const [key, flags] of Object.entries(before)) {
    const uid = Number(key);
    if (uid < step.uids[0] || uid > step.uids[1]) {
      after[uid] = flags;
      continue;
    }
    const set = new Set(step.action === "replace" ? [] : flags);
    for (const n of names) {
      if (step.action === "remove") set.delete(n);
      else set.add(n);
    }
    after[uid] = [...set].sort();
  }
  return after;
}

/**
 * The flags doveadm reads from a copy of `store` without its dovecot.index*
 * (INBOX only): what the mail files alone say.
 */
async function flagsInFiles(store: DovecotOracle): Promise<FlagsByUid> {
  const copy = createOracle(store.format);
  try {
    fs.cpSync(store.root, copy.root, { recursive: true, force: true });
    const indexDir = copy.mailboxIndexDir("INBOX");
    for (const name of fs.readdirSync(indexDir)) {
      if (name.startsWith("dovecot.index")) fs.rmSync(path.join(indexDir, name));
    }
    copy.chownRootSync();
    const rows = await copy.fetchFlags("INBOX");
    return Object.fromEntries(rows.map((r) => [r.uid, [...r.flags].sort()]));
  } finally {
    await copy.cleanup();
  }
}

const FORMATS: readonly MailFormat[] = ["maildir", "mbox"];

describeInterop("Every flag change reaches the Maildir/mbox files before the command or commit() returns", () => {
  let o: DovecotOracle | undefined;
  let storage: Storage | undefined;
  afterEach(async () => {
    await storage?.close();
    await o?.cleanup();
    storage = o = undefined;
  });

  for (const format of FORMATS) {
    it(`${format}: (control) after each doveadm flags command, a copy without dovecot.index* shows the flags just set`, async () => {
      // Dovecot's own store passes the same check: the expectations and the copy-and-read are sound.
      const store = (o = createOracle(format));
      for (let i = 1; i <= 3; i++) await store.save("INBOX", sampleMessage(i));
      let expected: FlagsByUid = { 1: [], 2: [], 3: [] };
      for (const step of STEPS) {
        await store.flags(step.action, step.flags, ["mailbox", "INBOX", "uid", `${step.uids[0]}:${step.uids[1]}`]);
        expected = applyStep(expected, step);
        expect.soft(await flagsInFiles(store), `${format} doveadm: after ${describeStep(step)}`).toEqual(expected);
      }
    });

    it(`${format}: after each mailstore flags command, a copy without dovecot.index* shows the flags just set`, async () => {
      const store = (o = createOracle(format));
      const cli = async (args: readonly string[], input?: string): Promise<void> => {
        await new Promise<void>((resolve, reject) => {
          const child = execFile(process.execPath, [bin, "-l", store.location, ...args], { env: { ...process.env, MAIL: "" } }, (err, _stdout, stderr) => {
            if (err) reject(new Error(`mailstore ${args.join(" ")} failed: ${err.message}\n${stderr}`));
            else resolve();
          });
          child.stdin!.end(input ?? "");
        });
      };
      for (let i = 1; i <= 3; i++) await cli(["save", "-m", "INBOX"], sampleMessage(i));
      let expected: FlagsByUid = { 1: [], 2: [], 3: [] };
      expect(await flagsInFiles(store), "after the saves").toEqual(expected);

      for (const step of STEPS) {
        await cli(["flags", step.action, step.flags, "mailbox", "INBOX", "uid", `${step.uids[0]}:${step.uids[1]}`]);
        expected = applyStep(expected, step);
        expect.soft(await flagsInFiles(store), `${format} CLI: after ${describeStep(step)}`).toEqual(expected);
      }
    });

    it(`${format}: after each commit() of flag and keyword changes, a copy without dovecot.index* shows them`, async () => {
      const store = (o = createOracle(format));
      storage = openStorage(store.location);
      const box = await storage.openMailbox("INBOX");
      const saved = await box.transaction().append({ body: sampleMessage(1) }).append({ body: sampleMessage(2) }).append({ body: sampleMessage(3) }).commit();
      expect(saved.appendedUids).toEqual([1, 2, 3]);
      let expected: FlagsByUid = { 1: [], 2: [], 3: [] };
      expect(await flagsInFiles(store), "after the saves").toEqual(expected);

      for (const step of STEPS) {
        const names = step.flags.split(" ").filter((n) => n !== "");
        await box.transaction().flags([{ uid1: step.uids[0], uid2: step.uids[1] }], step.action, names).commit();
        expected = applyStep(expected, step);
        // The mailbox stays open: the files must be right when commit() returns, not when the mailbox closes.
        expect.soft(await flagsInFiles(store), `${format} API: after ${describeStep(step)}`).toEqual(expected);
      }

      // Flags and a new keyword given with the message itself.
      await box.transaction().append({ body: sampleMessage(4), flags: ["\\Flagged", "Fresh"] }).commit();
      expected = { ...expected, 4: ["Fresh", "\\Flagged"].sort() };
      expect.soft(await flagsInFiles(store), `${format} API: after appending uid 4 with \\Flagged Fresh`).toEqual(expected);

      // Several changes in one transaction.
      await box.transaction()
        .flags([{ uid1: 1, uid2: 4 }], "add", ["\\Seen", "All"])
        .flags([{ uid1: 4, uid2: 4 }], "remove", ["Fresh", "\\Flagged"])
        .commit();
      expected = applyStep(expected, { action: "add", flags: "\\Seen All", uids: [1, 4] });
      expected = applyStep(expected, { action: "remove", flags: "Fresh \\Flagged", uids: [4, 4] });
      expect.soft(await flagsInFiles(store), `${format} API: after one transaction adding \\Seen All to 1:4 and removing Fresh \\Flagged from 4`).toEqual(expected);
    });
  }
});
