import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openStorage } from "../../../../src/index.js";

/**
 * The read-only check (unindexed.ts): whether new/ and cur/ hold what no
 * index has seen, file by file, without writing anything.
 */
describe("maildir: files changed since the last sync (read-only)", () => {
  let dir: string;
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Four messages delivered and synced; returns the Maildir and its cur/ names. */
  async function synced(): Promise<{ maildir: string; cur: () => string[] }> {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "unindexed-"));
    const maildir = path.join(dir, "Maildir");
    for (const sub of ["new", "cur", "tmp"]) fs.mkdirSync(path.join(maildir, sub), { recursive: true });
    for (let i = 1; i <= 4; i++) fs.writeFileSync(path.join(maildir, "cur", `170000000${i}.M${i}P1.host:2,${i === 2 ? "S" : ""}`), `Subject: ${i}\n\nbody\n`);
    const writer = openStorage(`maildir:${maildir}`);
    await (await writer.openMailbox("INBOX")).refresh();
    await writer.close();
    return { maildir, cur: () => fs.readdirSync(path.join(maildir, "cur")).sort() };
  }

  async function changed(maildir: string): Promise<boolean> {
    const ro = openStorage(`maildir:${maildir}`, { readOnly: true });
    try {
      return (await ro.openMailbox("INBOX")).hasUnindexedFileChanges();
    } finally {
      await ro.close();
    }
  }

  /** Moves cur/'s mtime past the index header's stamp without changing any name. */
  function touchCur(maildir: string): void {
    const t = new Date(Date.now() + 5_000);
    fs.utimesSync(path.join(maildir, "cur"), t, t);
  }

  it("a moved mtime alone is no change", async () => {
    const { maildir } = await synced();
    touchCur(maildir);
    expect(await changed(maildir)).toBe(false);
  });

  it("a file renamed to other flags, a file gone, a new file, a base name in new/ and cur/ are changes", async () => {
    const cases: Array<(maildir: string, names: string[]) => void> = [
      (m, names) => fs.renameSync(path.join(m, "cur", names[2]), path.join(m, "cur", `${names[2]}F`)),
      (m, names) => fs.renameSync(path.join(m, "cur", names[1]), path.join(m, "cur", names[1].replace(/S$/, ""))),
      (m, names) => fs.unlinkSync(path.join(m, "cur", names[3])),
      (m) => fs.writeFileSync(path.join(m, "new", "1700000009.M9P1.host"), "Subject: 9\n\nbody\n"),
      (m, names) => fs.copyFileSync(path.join(m, "cur", names[0]), path.join(m, "new", names[0].replace(/:2,.*$/, ""))),
      (m, names) => fs.renameSync(path.join(m, "cur", names[0]), path.join(m, "cur", `:2,${names[0]}`)),
    ];
    for (const [k, change] of cases.entries()) {
      const { maildir, cur } = await synced();
      change(maildir, cur());
      touchCur(maildir);
      expect(await changed(maildir), `case ${k}`).toBe(true);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("maildir: the read-only check over a dovecot.index read lazily", () => {
  let dir: string;
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("reads no row when new/ and cur/ are as the index last saw them; a change is still found", async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "unindexed-lazy-"));
    const maildir = path.join(dir, "Maildir");
    for (const sub of ["new", "cur", "tmp"]) fs.mkdirSync(path.join(maildir, sub), { recursive: true });
    // Enough messages for a dovecot.index of 64 KiB or more: its rows are read on first use.
    for (let i = 1; i <= 9000; i++) fs.writeFileSync(path.join(maildir, "cur", `${1700000000 + i}.M${i}P1.host:2,`), `Subject: ${i}\n\nbody\n`);
    const writer = openStorage(`maildir:${maildir}`);
    const w = await writer.openMailbox("INBOX");
    await w.refresh();
    await w.indexLogTail();
    await writer.close();
    expect(fs.statSync(path.join(maildir, "dovecot.index")).size).toBeGreaterThanOrEqual(64 * 1024);
    // Past the one-second window in which a sync leaves the directories' stamps unsaved.
    const old = new Date(Date.now() - 10_000);
    for (const sub of ["new", "cur"]) fs.utimesSync(path.join(maildir, sub), old, old);
    const w2 = openStorage(`maildir:${maildir}`);
    await (await w2.openMailbox("INBOX")).refresh();
    await w2.close();

    const ro = openStorage(`maildir:${maildir}`, { readOnly: true });
    const box = await ro.openMailbox("INBOX");
    expect((await box.status(["messages"], { refresh: true })).messages).toBe(9000);
    expect(box.hasUnindexedFileChanges()).toBe(false);
    expect(box.headerState.records.unread).toBe(true);
    await ro.close();

    const name = fs.readdirSync(path.join(maildir, "cur"))[0];
    fs.renameSync(path.join(maildir, "cur", name), path.join(maildir, "cur", name + "S"));
    const ro2 = openStorage(`maildir:${maildir}`, { readOnly: true });
    const box2 = await ro2.openMailbox("INBOX");
    expect(box2.hasUnindexedFileChanges()).toBe(true);
    await ro2.close();
  });
});
