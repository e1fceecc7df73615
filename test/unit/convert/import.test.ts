import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Command } from "commander";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { registerImport } from "../../../src/cli/commands/import.js";
import type { CliIo } from "../../../src/cli/io.js";
import { importMailboxes, type ImportProgress } from "../../../src/convert/import.js";
import { flagNames, messageCount, openStorage, recordAt, type Storage } from "../../../src/index.js";
import { readCheckpoint } from "../../../src/index-io/checkpoint-file.js";

async function contents(storage: Storage) {
  const out: Record<string, Array<[number, string[], string]>> = {};
  for (const name of await storage.listMailboxes()) {
    const box = await storage.openMailbox(name);
    const st = await box.refresh();
    out[name] = [];
    for (let seq = 1; seq <= messageCount(st); seq++) {
      const r = recordAt(st, seq)!;
      out[name].push([r.uid, [...flagNames(r.flags & 0x1f), ...r.keywords].sort(), Buffer.from(await box.readMessage(r.uid)).toString()]);
    }
    await box.close();
  }
  return out;
}

describe("importMailboxes", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "convert-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function fill(storage: Storage) {
    await storage.createMailbox("A/B");
    for (const name of ["INBOX", "A/B"]) {
      const box = await storage.openMailbox(name);
      const tx = box.transaction();
      for (let i = 1; i <= 7; i++) tx.append({ body: `Subject: ${name} ${i}\n\nFrom the body ${i}\n`, flags: i % 2 ? ["\\Seen", `kw${i}`] : [], receivedDate: new Date(1_700_000_000_000 + i * 1000) });
      await tx.commit();
      await box.close();
    }
  }

  it("copies every mailbox with flags, keywords, bytes and UIDs, in batches, reporting progress", async () => {
    const source = openStorage(`sdbox:${dir}/src`);
    await fill(source);
    const target = openStorage(`mbox:${dir}/dst:INBOX=${dir}/dst/inbox`);
    const seen: ImportProgress[] = [];
    const result = await importMailboxes(source, target, { batchMessages: 3, onProgress: (p) => seen.push(p) });
    expect(result.map((r) => [r.name, r.messages, r.uidsKept]).sort()).toEqual([["A/B", 7, true], ["INBOX", 7, true]]);
    expect(await contents(target)).toEqual(await contents(source));
    expect(seen.at(-1)).toMatchObject({ messagesDone: 14, messagesTotal: 14 });
    expect(seen.filter((p) => p.mailbox === "INBOX").map((p) => p.messagesDone)).toEqual([7, 10, 13, 14]);
    await source.close();
    await target.close();
  });

  it("leaves no log tail behind in mdbox: dovecot.map.index and the mailbox's dovecot.index cover their logs", async () => {
    const source = openStorage(`sdbox:${dir}/src`);
    const box = await source.openMailbox("INBOX");
    const tx = box.transaction();
    // 300 messages in batches of 40: each batch logs ~0.6 KB to the map, below the 128 KB rewrite size.
    for (let i = 1; i <= 300; i++) tx.append({ body: `Subject: ${i}\n\nbody ${i}\n`, flags: [] });
    await tx.commit();
    await box.close();
    const target = openStorage(`mdbox:${dir}/dst`);
    await importMailboxes(source, target, { batchMessages: 40 });
    for (const prefix of [`${dir}/dst/storage/dovecot.map.index`, `${dir}/dst/mailboxes/INBOX/dbox-Mails/dovecot.index`]) {
      // (The tail offset is the map's business only: mdbox mailbox logs leave it at 0, as Dovecot does.)
      expect(readCheckpoint(prefix)!.header.logFileHeadOffset).toBe(fs.statSync(prefix + ".log").size);
    }
    await source.close();
    await target.close();
  });

  it("keeps UIDVALIDITY, UIDs with their gaps and UIDNEXT in an empty target; a second run copies nothing", async () => {
    const source = openStorage(`sdbox:${dir}/src`);
    await fill(source);
    const box = await source.openMailbox("INBOX");
    await box.transaction().expunge([{ uid1: 2, uid2: 2 }, { uid1: 7, uid2: 7 }]).commit();
    const sourceValidity = box.uidValidity;
    await box.close();
    const target = openStorage(`maildir:${dir}/dst`);
    const result = await importMailboxes(source, target, { mailboxes: ["INBOX"], batchMessages: 2 });
    expect(result).toMatchObject([{ name: "INBOX", messages: 5, skipped: 0, uidsKept: true, uidValidityKept: true, targetUidValidity: sourceValidity }]);
    const got = await target.openMailbox("INBOX");
    const st = await got.refresh();
    expect(Array.from({ length: messageCount(st) }, (_, i) => recordAt(st, i + 1)!.uid)).toEqual([1, 3, 4, 5, 6]);
    expect([st.header.uidValidity, st.header.nextUid]).toEqual([sourceValidity, 8]);
    await got.close();
    const again = await importMailboxes(source, target, { mailboxes: ["INBOX"] });
    expect(again).toMatchObject([{ name: "INBOX", messages: 0, bytes: 0, skipped: 5, uidsKept: true, uidValidityKept: true }]);
    expect((await contents(target)).INBOX).toHaveLength(5);
    await source.close();
    await target.close();
  });

  it("renumbers into a mailbox that has messages under another UIDVALIDITY, and says why", async () => {
    const source = openStorage(`sdbox:${dir}/src`);
    await fill(source);
    const target = openStorage(`mdbox:${dir}/dst`);
    const own = await target.openMailbox("INBOX");
    // Two stores created in the same second get the same time-based UIDVALIDITY: make them differ.
    const sourceValidity = (await source.openMailbox("INBOX")).uidValidity;
    await own.update({ uidValidity: sourceValidity + 1 });
    await own.transaction().append({ body: "Subject: own\n\nmine\n" }).commit();
    const ownValidity = own.uidValidity;
    await own.close();
    const [result] = await importMailboxes(source, target, { mailboxes: ["INBOX"] });
    expect(result).toMatchObject({ messages: 7, skipped: 0, uidsKept: false, uidValidityKept: false, targetUidValidity: ownValidity });
    expect(result.renumberedBecause).toMatch(/already has messages, under another UIDVALIDITY/);
    expect((await contents(target)).INBOX.map(([uid]) => uid)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // Again: the seven are recognised by GUID, the target's own message stays.
    const [again] = await importMailboxes(source, target, { mailboxes: ["INBOX"] });
    expect(again).toMatchObject({ messages: 0, skipped: 7 });
    await source.close();
    await target.close();
  });

  it("recognises messages by content where the target cannot keep GUIDs (mbox), counting identical ones", async () => {
    const source = openStorage(`sdbox:${dir}/src`);
    const box = await source.openMailbox("INBOX");
    // Two identical messages without the headers an mbox GUID covers, and one CRLF message.
    await box.transaction().append({ body: "X: 1\n\nsame\n" }).append({ body: "X: 1\n\nsame\n" }).append({ body: "Subject: crlf\r\n\r\nbody\r\n" }).commit();
    await box.close();
    const target = openStorage(`mbox:${dir}/dst:INBOX=${dir}/dst/inbox`);
    expect(await importMailboxes(source, target)).toMatchObject([{ messages: 3, skipped: 0, uidsKept: true }]);
    expect(await importMailboxes(source, target)).toMatchObject([{ messages: 0, skipped: 3 }]);
    // A third identical message in the source: one more copy, the other two are there.
    const more = await source.openMailbox("INBOX");
    await more.transaction().append({ body: "X: 1\n\nsame\n" }).commit();
    await more.close();
    expect(await importMailboxes(source, target)).toMatchObject([{ messages: 1, skipped: 3, uidsKept: true }]);
    expect((await contents(target)).INBOX.map(([uid]) => uid)).toEqual([1, 2, 3, 4]);
    await source.close();
    await target.close();
  });
});

describe("mailstore import", () => {
  it("copies a location into -l, printing one summary line per mailbox (no progress bar off a terminal); again, it skips what is there", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "convert-cli-"));
    try {
      const source = openStorage(`sdbox:${dir}/src`);
      const box = await source.openMailbox("INBOX");
      await box.transaction().append({ body: "Subject: cli\n\nx\n", flags: ["\\Flagged"] }).commit();
      await source.close();
      let out = "";
      const io: CliIo = { out: (t) => void (out += typeof t === "string" ? t : Buffer.from(t).toString("latin1")), err: (t) => void (out += t), isTTY: false, readStdin: async () => Buffer.alloc(0), env: {} };
      const program = new Command("mailstore").option("-l, --location <location>").exitOverride();
      registerImport(program, io);
      await program.parseAsync(["-l", `sdbox:${dir}/dst`, "import", `sdbox:${dir}/src`], { from: "user" });
      expect(out).toMatch(/^INBOX: 1 message \(16 bytes\), 0 skipped \(already there\), UIDs kept, UIDVALIDITY \d+ kept\n$/);
      out = "";
      await program.parseAsync(["-l", `sdbox:${dir}/dst`, "import", `sdbox:${dir}/src`], { from: "user" });
      expect(out).toMatch(/^INBOX: 0 messages \(0 bytes\), 1 skipped \(already there\), UIDs kept, UIDVALIDITY \d+ kept\n$/);
      const target = openStorage(`sdbox:${dir}/dst`);
      const got = await contents(target);
      expect(got.INBOX).toEqual([[1, ["\\Flagged"], "Subject: cli\n\nx\n"]]);
      await target.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
