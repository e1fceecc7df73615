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
