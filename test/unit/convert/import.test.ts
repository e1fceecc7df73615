import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Command } from "commander";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { registerImport } from "../../../src/cli/commands/import.js";
import type { CliIo } from "../../../src/cli/io.js";
import { importMailboxes, type ImportProgress } from "../../../src/convert/import.js";
import { flagNames, messageCount, openStorage, recordAt, type Storage } from "../../../src/index.js";

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

  it("reports UIDs it could not keep (a gap in the source)", async () => {
    const source = openStorage(`sdbox:${dir}/src`);
    await fill(source);
    const box = await source.openMailbox("INBOX");
    await box.transaction().expunge([{ uid1: 2, uid2: 2 }]).commit();
    await box.close();
    const target = openStorage(`sdbox:${dir}/dst`);
    const result = await importMailboxes(source, target, { mailboxes: ["INBOX"] });
    expect(result).toMatchObject([{ name: "INBOX", messages: 6, uidsKept: false }]);
    await source.close();
    await target.close();
  });
});

describe("mailstore import", () => {
  it("copies a location into -l quietly when stdout is not a terminal", async () => {
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
      expect(out).toBe("");
      const target = openStorage(`sdbox:${dir}/dst`);
      const got = await contents(target);
      expect(got.INBOX).toEqual([[1, ["\\Flagged"], "Subject: cli\n\nx\n"]]);
      await target.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
