import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openStorage } from "../../../src/index.js";
import { MailstoreError } from "../../../src/shared/errors.js";
import { describeTree } from "../../helpers/tree.js";

/** Every path under `dir` with its size and mtime (ns). */
function listing(dir: string): string[] {
  return [...describeTree(dir, (_, st) => `${st.mode.toString(8)} ${st.size} ${st.mtimeNs}`)].map(([p, d]) => `${p} ${d}`);
}

const code = async (p: Promise<unknown> | (() => unknown)): Promise<string | undefined> => {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (err) {
    if (err instanceof MailstoreError) return err.code;
    throw err;
  }
  return undefined;
};

describe("Storage opened read-only", () => {
  let dir: string;
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const format of ["sdbox", "mdbox", "maildir", "mbox"] as const) {
    it(`${format}: reads what is there, refuses every change with UNSUPPORTED, and writes nothing`, async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "ro-"));
      const location = format === "mbox" ? `mbox:${dir}/mail:INBOX=${dir}/inbox` : `${format}:${dir}/mail`;
      const writer = openStorage(location);
      await writer.createMailbox("Work");
      const inbox = await writer.openMailbox("INBOX");
      await inbox.transaction().append({ body: "Subject: 1\r\n\r\none\r\n" }).append({ body: "Subject: 2\r\n\r\ntwo\r\n", flags: ["\\Seen"] }).commit();
      await writer.close();
      const before = listing(dir);

      const storage = openStorage(location, { readOnly: true });
      try {
        expect(storage.readOnly).toBe(true);
        expect((await storage.listMailboxes()).sort()).toEqual(["INBOX", "Work"]);
        const box = await storage.openMailbox("INBOX");
        await box.refresh();
        expect(box.hasUnindexedFileChanges()).toBe(false);
        expect((await box.status(["messages", "unseen"]))).toEqual({ messages: 2, unseen: 1 });
        expect(Buffer.from(await box.readMessage(2)).toString()).toContain("two");
        expect(await code(box.transaction().flags([{ uid1: 1, uid2: 1 }], "add", ["\\Seen"]).commit())).toBe("UNSUPPORTED");
        expect(await code(box.transaction().append({ body: "Subject: 3\r\n\r\n" }).commit())).toBe("UNSUPPORTED");
        expect(await code(box.moveTo(await storage.openMailbox("Work"), [{ uid1: 1, uid2: 1 }]))).toBe("UNSUPPORTED");
        expect(await code(storage.createMailbox("New"))).toBe("UNSUPPORTED");
        expect(await code(storage.deleteMailbox("Work"))).toBe("UNSUPPORTED");
        expect(await code(storage.renameMailbox("Work", "Old"))).toBe("UNSUPPORTED");
        expect(await code(storage.subscribe("Work"))).toBe("UNSUPPORTED");
        expect(await code(storage.purge())).toBe("UNSUPPORTED");
        expect(await code(storage.openMailbox("Nope"))).toBe("NOT_FOUND");
      } finally {
        await storage.close();
      }
      expect(listing(dir)).toEqual(before);
    });
  }

  it("a location with no store is NOT_FOUND and nothing is created; a missing INBOX is not created either", async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "ro-"));
    expect(await code(() => openStorage(`sdbox:${dir}/nothing`, { readOnly: true }))).toBe("NOT_FOUND");
    expect(fs.existsSync(`${dir}/nothing`)).toBe(false);
    fs.mkdirSync(`${dir}/empty`, { mode: 0o700 });
    const storage = openStorage(`sdbox:${dir}/empty`, { readOnly: true });
    expect(await code(storage.openMailbox("INBOX"))).toBe("NOT_FOUND");
    await storage.close();
    expect(fs.readdirSync(`${dir}/empty`)).toEqual([]);
  });

  it("maildir: a mailbox no index has seen is NOT_FOUND (no index is created); a delivery after the last sync is reported, not shown", async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "ro-"));
    for (const sub of ["new", "cur", "tmp"]) fs.mkdirSync(path.join(dir, "Maildir", sub), { recursive: true });
    fs.writeFileSync(path.join(dir, "Maildir/new/1700000000.M1P1.host"), "Subject: 1\n\nbody\n");
    const location = `maildir:${dir}/Maildir`;
    const ro = openStorage(location, { readOnly: true });
    expect(await code(ro.openMailbox("INBOX"))).toBe("NOT_FOUND");
    await ro.close();
    expect(fs.readdirSync(path.join(dir, "Maildir")).sort()).toEqual(["cur", "new", "tmp"]);

    const writer = openStorage(location);
    await (await writer.openMailbox("INBOX")).refresh();
    await writer.close();
    fs.writeFileSync(path.join(dir, "Maildir/new/1700000001.M2P2.host"), "Subject: 2\n\nbody\n");
    const again = openStorage(location, { readOnly: true });
    const box = await again.openMailbox("INBOX");
    expect(box.hasUnindexedFileChanges()).toBe(true);
    expect((await box.status(["messages"])).messages).toBe(1);
    await again.close();
  });
});
