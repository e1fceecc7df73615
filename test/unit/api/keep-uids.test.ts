/**
 * The API addition that lets an import keep another mailbox's numbering:
 * Storage.createMailbox(name, { uidValidity }), AppendInput.uid (Dovecot's
 * mail_save_set_uid) and Mailbox.update (mailbox_update's uid_validity and
 * min_next_uid), in every format: the log records, the state, and the
 * copies of the values the mail files keep (dovecot-uidlist, X-IMAPbase).
 * test/interop/import-keeps-uids.test.ts checks the result with doveadm.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { assignAppendUids } from "../../../src/api/mailbox-transaction.js";
import { MailstoreError, messageCount, openStorage, readLog, recordAt, type LogRecord, type Storage } from "../../../src/index.js";

const FORMATS = ["sdbox", "mdbox", "maildir", "mbox"] as const;

function locationOf(format: (typeof FORMATS)[number], dir: string): string {
  return format === "mbox" ? `mbox:${dir}/mail:INBOX=${dir}/inbox` : `${format}:${dir}/mail`;
}

/** The header-update patches of uid_validity/next_uid a mailbox's log holds, as [offset, u32s, external]. */
function headerUpdates(prefix: string): Array<[number, number[], boolean]> {
  const out: Array<[number, number[], boolean]> = [];
  for (const tx of readLog(prefix).transactions) {
    for (const { record } of tx.entries) {
      if (record.type !== "header-update") continue;
      for (const p of (record as Extract<LogRecord, { type: "header-update" }>).patches) {
        if (p.offset < 24 || p.offset >= 32) continue;
        const view = new DataView(p.data.buffer, p.data.byteOffset, p.data.byteLength);
        const words = Array.from({ length: p.data.length / 4 }, (_, i) => view.getUint32(i * 4, true));
        out.push([p.offset, words, record.external]);
      }
    }
  }
  return out;
}

describe("assignAppendUids", () => {
  it("keeps requested UIDs with their gaps and numbers the others after the previous one", () => {
    expect(assignAppendUids(1, [undefined, undefined])).toEqual([1, 2]);
    expect(assignAppendUids(1, [3, 5, undefined, 9])).toEqual([3, 5, 6, 9]);
    expect(assignAppendUids(4, [undefined, 7])).toEqual([4, 7]);
  });
  it("refuses a UID below next_uid or one that does not ascend", () => {
    expect(() => assignAppendUids(5, [4])).toThrow(/below the mailbox's next UID 5/);
    expect(() => assignAppendUids(1, [undefined, 2, undefined, 3])).toThrow(/not above/);
    expect(() => assignAppendUids(1, [0xfffffffe, undefined])).toThrow(MailstoreError);
  });
});

for (const format of FORMATS) {
  describe(`keeping UIDs and UIDVALIDITY (${format})`, () => {
    let dir: string;
    let storage: Storage;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), `mailstore-keep-uids-${format}-`));
      if (format === "mbox") fs.writeFileSync(path.join(dir, "inbox"), "", { mode: 0o600 });
      storage = openStorage(locationOf(format, dir));
    });
    afterEach(async () => {
      await storage.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it("creates a mailbox with a given UIDVALIDITY and appends with gaps; next UID follows, and can be raised", async () => {
      await storage.createMailbox("Kept", { uidValidity: 123456 });
      let box = await storage.openMailbox("Kept");
      expect(box.uidValidity).toBe(123456);
      const { appendedUids } = await box.transaction()
        .append({ body: "Subject: a\n\na\n", uid: 3 })
        .append({ body: "Subject: b\n\nb\n", uid: 5, flags: ["\\Seen", "kw"] })
        .append({ body: "Subject: c\n\nc\n" })
        .append({ body: "Subject: d\n\nd\n", uid: 10 })
        .commit();
      expect(appendedUids).toEqual([3, 5, 6, 10]);
      const state = await box.refresh();
      expect(Array.from({ length: messageCount(state) }, (_, i) => recordAt(state, i + 1)!.uid)).toEqual([3, 5, 6, 10]);
      expect(state.header.nextUid).toBe(11);
      expect(Buffer.from(await box.readMessage(5)).toString()).toBe("Subject: b\n\nb\n");
      // A UID below next UID is refused at commit, and nothing is written.
      await expect(box.transaction().append({ body: "Subject: e\n\ne\n", uid: 7 }).commit()).rejects.toThrow(/below the mailbox's next UID 11/);
      expect(messageCount(await box.refresh())).toBe(4);

      const before = box.position;
      await box.update({ minNextUid: 20 });
      await box.update({ minNextUid: 15 }); // never lowered: nothing logged
      expect(box.state.header.nextUid).toBe(20);
      const logged = headerUpdates(box.indexPrefix).filter(([offset]) => offset === 28);
      expect(logged.at(-1)).toEqual([28, [20], false]);
      expect(readLog(box.indexPrefix, before).transactions.filter((tx) => tx.entries.some((e) => e.record.type === "header-update" && !e.record.external))).toHaveLength(1);
      // UIDVALIDITY cannot change under messages.
      await expect(box.update({ uidValidity: 99 })).rejects.toThrow(/no messages/);
      await box.close();

      // The numbering survives a reopen (and, for Maildir and mbox, a file sync).
      box = await storage.openMailbox("Kept");
      const again = await box.refresh();
      expect([again.header.uidValidity, again.header.nextUid, messageCount(again)]).toEqual([123456, 20, 4]);
      if (format === "maildir") expect(fs.readFileSync(path.join(dir, "mail", ".Kept", "dovecot-uidlist"), "utf8")).toMatch(/^3 V123456 N20 /);
      if (format === "mbox") expect(fs.readFileSync(path.join(dir, "mail", "Kept"), "latin1")).toMatch(/^X-IMAPbase: 123456 0000000019 /m);
      await box.close();
    });

    it("gives an empty mailbox (INBOX, made on first use) another UIDVALIDITY with one header update, as Dovecot logs it", async () => {
      const box = await storage.openMailbox("INBOX");
      expect(box.uidValidity).not.toBe(777);
      await box.update({ uidValidity: 777, minNextUid: 9 });
      expect([box.state.header.uidValidity, box.state.header.nextUid]).toEqual([777, 9]);
      // One patch over both fields, not EXTERNAL (doveadm mailbox update writes the same).
      expect(headerUpdates(box.indexPrefix).at(-1)).toEqual([24, [777, 9], false]);
      await box.update({ uidValidity: 778 });
      expect(headerUpdates(box.indexPrefix).at(-1)).toEqual([24, [778], false]);
      const { appendedUids } = await box.transaction().append({ body: "Subject: x\n\nx\n", uid: 12 }).commit();
      expect(appendedUids).toEqual([12]);
      await box.close();
      const reopened = await storage.openMailbox("INBOX");
      const state = await reopened.refresh();
      expect([state.header.uidValidity, state.header.nextUid, recordAt(state, 1)!.uid]).toEqual([778, 13, 12]);
      if (format === "maildir") expect(fs.readFileSync(path.join(dir, "mail", "dovecot-uidlist"), "utf8")).toMatch(/^3 V778 N9 .*\n12 :/); // appends leave N (Dovecot's too)
      if (format === "mbox") expect(fs.readFileSync(path.join(dir, "inbox"), "latin1")).toMatch(/^X-IMAP: 778 0000000012 /m);
      await reopened.close();
    });
  });
}
