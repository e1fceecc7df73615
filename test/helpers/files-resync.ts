/**
 * force-resync cases shared by the Maildir and mbox interop suites
 * (test/interop/maildir-resync.test.ts, mbox-resync.test.ts): the formats
 * whose mail files are the truth, checked against real Dovecot.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, expect, it } from "vitest";
import type { FilesResyncResult } from "../../src/drivers/files-resync.js";
import { flagNames, loadState, messageCount, openStorage, recordAt, type ChangeBatch, type Mailbox, type Storage } from "../../src/index.js";
import { doveadmFetch, engineFetch } from "../unit/drivers/mdbox/oracle-helpers.js";
import { createOracle, sampleMessage, type DovecotOracle } from "./dovecot.js";

type FilesFormat = "maildir" | "mbox";

/** Deletes every index file under `root` (dovecot.index*, dovecot.list.index*), as an administrator losing them would. */
export function dropIndexFiles(root: string): number {
  let n = 0;
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.startsWith("dovecot.index") || e.name.startsWith("dovecot.list.index")) {
        fs.rmSync(p);
        n++;
      }
    }
  };
  walk(root);
  return n;
}

/** uid + flags (with keywords, sorted) as the log alone says, without opening (or syncing) the mailbox. */
export function loggedMessages(indexDir: string): Array<{ uid: number; flags: string[] }> {
  const state = loadState(path.join(indexDir, "dovecot.index"));
  const out = [];
  for (let seq = 1; seq <= messageCount(state); seq++) {
    const r = recordAt(state, seq)!;
    out.push({ uid: r.uid, flags: [...flagNames(r.flags), ...r.keywords].sort() });
  }
  return out;
}

/** The storage's own forceResync results (Storage.forceResync returns nothing). */
/** Sets every Maildir new/ and cur/ under `root` to have last changed 10 s ago (nothing for mbox). */
export function settleMaildirDirs(root: string): void {
  const past = new Date(Date.now() - 10_000);
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const p = path.join(dir, e.name);
      if (e.name === "new" || e.name === "cur") fs.utimesSync(p, past, past);
      else walk(p);
    }
  };
  walk(root);
}

export function backendResync(storage: Storage, mailbox: string): Promise<FilesResyncResult[]> {
  return (storage.backend as unknown as { forceResync(m: string): Promise<FilesResyncResult[]> }).forceResync(mailbox);
}

/** Resolves with the first change batch after subscribing that satisfies `pred`. */
export function nextBatch(box: Mailbox, pred: (b: ChangeBatch) => boolean, timeoutMs = 10_000): { seen: Promise<ChangeBatch>; stop(): void } {
  let stop = () => {};
  const seen = new Promise<ChangeBatch>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no matching change batch")), timeoutMs);
    const sub = box.changes().subscribe({
      next: (b) => {
        if (!pred(b)) return;
        clearTimeout(timer);
        resolve(b);
      },
      error: reject,
    });
    stop = () => {
      clearTimeout(timer);
      sub.unsubscribe();
    };
  });
  return { seen, stop: () => stop() };
}

/** Registers the cases both formats share; call inside describeInterop. */
export function sharedResyncCases(format: FilesFormat): void {
  const sep = format === "maildir" ? "." : "/";
  const child = `Sub${sep}Child`;
  const boxes = [{ theirs: "INBOX", ours: "INBOX" }, { theirs: child, ours: "Sub/Child" }];
  const oracles: DovecotOracle[] = [];
  afterEach(async () => {
    for (const o of oracles.splice(0)) await o.cleanup();
  });

  /** Dovecot writes two mailboxes with flags, keywords, an expunge and a copy. @returns what doveadm fetches, per mailbox. */
  async function dovecotWrites(o: DovecotOracle) {
    await o.mailboxCreate(child);
    for (let i = 1; i <= 5; i++) await o.save("INBOX", sampleMessage(i));
    await o.flags("add", "\\Seen $Label1 foo", "mailbox INBOX uid 1:3");
    await o.flags("remove", "foo", "mailbox INBOX uid 2");
    await o.flags("add", "\\Answered \\Flagged \\Draft \\Deleted", "mailbox INBOX uid 5");
    await o.expunge("mailbox INBOX uid 4");
    await o.copy(child, "mailbox INBOX uid 1");
    await o.save(child, sampleMessage(6));
    await o.flags("add", "\\Flagged other", ["mailbox", child, "uid", "2"]);
    const before = [];
    for (const b of boxes) {
      before.push({
        messages: await doveadmFetch(o, b.theirs),
        status: await o.mailboxStatus("messages uidnext uidvalidity", b.theirs),
      });
    }
    expect(before[0].messages.map((m) => m.uid)).toEqual([1, 2, 3, 5]);
    return before;
  }

  /** The engine's and doveadm's view of every mailbox equal `before`; doveadm complains about nothing. */
  async function expectAsBefore(o: DovecotOracle, storage: Storage, before: Awaited<ReturnType<typeof dovecotWrites>>) {
    for (const [i, b] of boxes.entries()) {
      // What force-resync logged, read straight from the log (before anything opens and syncs the mailbox).
      expect(loggedMessages(o.mailboxIndexDir(b.theirs))).toEqual(before[i].messages.map((m) => ({ uid: m.uid, flags: m.flags })));
      expect(await engineFetch(storage, b.ours)).toEqual(before[i].messages);
    }
    await storage.close();
    await o.chownRoot();
    for (const [i, b] of boxes.entries()) {
      expect(await doveadmFetch(o, b.theirs)).toEqual(before[i].messages);
      expect(await o.mailboxStatus("messages uidnext uidvalidity", b.theirs)).toEqual(before[i].status);
    }
    o.assertNoStderrProblems();
  }

  it("(a) every index file lost: the engine's force-resync rebuilds them; uids, flags, keywords, GUIDs and bodies as doveadm fetched them before; doveadm reads the rebuilt index", async () => {
    const o = createOracle(format);
    oracles.push(o);
    const before = await dovecotWrites(o);
    expect(dropIndexFiles(o.root)).toBeGreaterThan(0);
    const storage = openStorage(o.location);
    const results = await backendResync(storage, "*");
    expect(results.map((r) => [r.mailbox, r.messages, r.discarded])).toEqual([["INBOX", 4, undefined], ["Sub/Child", 2, undefined]]);
    await expectAsBefore(o, storage, before);
  });

  it("(b) garbage in dovecot.index.log (the whole file, or records after a valid header): force-resync replaces the log and loses no message", async () => {
    const o = createOracle(format);
    oracles.push(o);
    const before = await dovecotWrites(o);
    const inboxLog = o.mailboxLogPath("INBOX");
    fs.writeFileSync(inboxLog, Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 151 + 7) & 0xff)));
    const childLog = o.mailboxLogPath(child);
    const bytes = fs.readFileSync(childLog);
    expect(bytes.length).toBeGreaterThan(200);
    bytes.fill(0xa5, 60, 200);
    fs.writeFileSync(childLog, bytes);
    // Maildir's header records whether new/ and cur/ changed within a second of their scan (then the
    // next scan repeats, and logs the header again once the second is over): with their last change
    // well in the past, whether the second resync runs in the same second as the first does not matter.
    settleMaildirDirs(o.root);
    const storage = openStorage(o.location);
    const results = await backendResync(storage, "*");
    expect(results.map((r) => r.messages)).toEqual([4, 2]);
    for (const r of results) expect(r.discarded).toMatch(/^LOG_/);
    // A second resync finds the new logs readable and in line with the files.
    expect((await backendResync(storage, "*")).map((r) => [r.discarded, r.transactions])).toEqual([[undefined, 0], [undefined, 0]]);
    await expectAsBefore(o, storage, before);
  });

  it("(c) Dovecot's own force-resync, indexes lost, finds every message the engine wrote, with its uid, flags and keywords", async () => {
    const o = createOracle(format);
    oracles.push(o);
    const storage = openStorage(o.location);
    await storage.createMailbox("Sub/Child");
    const inbox = await storage.openMailbox("INBOX");
    await inbox.refresh();
    await inbox.transaction()
      .append({ body: sampleMessage(1), flags: ["\\Seen", "$Label1"] })
      .append({ body: sampleMessage(2) })
      .append({ body: sampleMessage(3), flags: ["\\Draft", "work"] })
      .append({ body: sampleMessage(4) })
      .commit();
    await inbox.transaction().flags([{ uid1: 2, uid2: 2 }], "add", ["\\Answered", "work"]).expunge([{ uid1: 4, uid2: 4 }]).commit();
    await inbox.refresh(); // the flag change reaches the files
    const sub = await storage.openMailbox("Sub/Child");
    await sub.refresh();
    await sub.transaction().append({ body: sampleMessage(5), flags: ["\\Flagged", "$Label1"] }).commit();
    await sub.refresh();
    const before = [await engineFetch(storage, "INBOX"), await engineFetch(storage, "Sub/Child")];
    await storage.close();
    expect(before[0].map((m) => m.uid)).toEqual([1, 2, 3]);
    expect(dropIndexFiles(o.root)).toBeGreaterThan(0);
    await o.chownRoot();
    await o.forceResync("*");
    for (const [i, b] of boxes.entries()) expect(await doveadmFetch(o, b.theirs)).toEqual(before[i]);
    o.assertNoStderrProblems();
  });
}
