/**
 * Maildir through the public API, against Dovecot 2.3 in both directions:
 * Dovecot writes (save, flags with keywords, expunge, copy, move, folders)
 * and the engine reads the same UIDs, flags, keywords, GUIDs and bytes; the
 * engine writes and `doveadm fetch` returns the same; both continue each
 * other's mailboxes, interleaved.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { flagNames, messageCount, recordAt, type Storage } from "../../src/index.js";
import { createOracle, describeInterop, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";
import { doveadmFetch, engineFetch } from "../helpers/fetch-compare.js";
import { openMaildirStorage } from "../unit/drivers/maildir/open-storage.js";

/** Maildir files of a mailbox directory: new/ and cur/ names. */
function filesOf(dir: string): string[] {
  return ["new", "cur"].flatMap((sub) => fs.readdirSync(path.join(dir, sub)).map((n) => `${sub}/${n}`)).sort();
}

describeInterop("Maildir through the public API, against Dovecot", () => {
  let o: DovecotOracle;
  let storage: Storage;
  beforeEach(() => {
    o = createOracle("maildir");
    storage = openMaildirStorage(o.location);
  });
  afterEach(async () => {
    await storage.close();
    await o.cleanup();
  });

  it("engine writes, doveadm fetches the same; Dovecot continues, the engine reads on; interleaved", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.transaction()
      .append({ body: sampleMessage(1), flags: ["\\Seen", "$Label1"] })
      .append({ body: sampleMessage(2).replace(/\n/g, "\r\n") })
      .append({ body: sampleMessage(3), flags: ["\\Draft"] })
      .commit();
    // As Dovecot saves: no flags → new/, flags → cur/ with :2,; sizes in the name.
    const names = filesOf(o.root);
    expect(names.filter((n) => n.startsWith("new/"))).toHaveLength(1);
    expect(names.find((n) => n.endsWith(":2,Sa"))).toMatch(/^cur\/\d+\.M\d+P\d+\.[^,]+,S=\d+,W=\d+:2,Sa$/);
    expect(fs.readFileSync(path.join(o.root, "dovecot-keywords"), "utf8")).toBe("0 $Label1\n");
    await box.transaction().flags([{ uid1: 2, uid2: 3 }], "add", ["\\Flagged", "work"]).commit();
    await box.transaction().flags([{ uid1: 1, uid2: 1 }], "replace", ["\\Answered"]).expunge([{ uid1: 3, uid2: 3 }]).commit();
    await o.chownRoot();
    const theirs = await doveadmFetch(o, "INBOX");
    expect(theirs.map((m) => m.uid)).toEqual([1, 2]);
    expect(await engineFetch(storage, "INBOX")).toEqual(theirs);
    expect(theirs[0].flags).toEqual(["\\Answered"]);
    expect(theirs[1].flags).toEqual(["\\Flagged", "work"]);
    expect(theirs[1].text).toBe(sampleMessage(2)); // stored with LF, as Dovecot stores it

    // Dovecot continues ...
    await o.save("INBOX", sampleMessage(4));
    await o.flags("add", "\\Seen dovecot-kw", "mailbox INBOX uid 1:*");
    await o.expunge("mailbox INBOX uid 2");
    // ... the engine continues Dovecot's log ...
    const box2 = await storage.openMailbox("INBOX");
    await box2.refresh();
    await box2.transaction().append({ body: sampleMessage(5) }).flags([{ uid1: 4, uid2: 4 }], "remove", ["\\Seen"]).commit();
    await box2.refresh();
    await o.chownRoot();
    // ... and both agree.
    const after = await doveadmFetch(o, "INBOX");
    expect(after.map((m) => m.uid)).toEqual([1, 4, 5]);
    expect(await engineFetch(storage, "INBOX")).toEqual(after);
    const status = await o.mailboxStatus("messages uidnext uidvalidity highestmodseq", "INBOX");
    expect(Number(status.uidnext)).toBe(6);
    expect(Number(status.uidvalidity)).toBe(box2.uidValidity);
    expect(String(box2.state.logModseq)).toBe(status.highestmodseq);
    await box.close();
    await box2.close();
    o.assertNoStderrProblems();
  });

  it("Dovecot writes, the engine reads the same (copy, move, expunge, keywords, folders)", async () => {
    await o.mailboxCreate("Sub.Child");
    for (let i = 1; i <= 5; i++) await o.save("INBOX", sampleMessage(i));
    await o.flags("add", "\\Seen $Label1 foo", "mailbox INBOX uid 1:3");
    await o.flags("remove", "foo", "mailbox INBOX uid 2");
    await o.copy("Sub.Child", "mailbox INBOX uid 1");
    await o.move("Sub.Child", "mailbox INBOX uid 4");
    await o.expunge("mailbox INBOX uid 2");
    expect(await storage.listMailboxes()).toEqual(["INBOX", "Sub/Child"]);
    expect(await engineFetch(storage, "INBOX")).toEqual(await doveadmFetch(o, "INBOX"));
    expect(await engineFetch(storage, "Sub/Child")).toEqual(await doveadmFetch(o, "Sub.Child"));
    o.assertNoStderrProblems();
  });

  it("doveadm force-resync of an engine-written Maildir keeps every UID, flag and keyword", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.transaction().append({ body: sampleMessage(1), flags: ["\\Seen", "one"] }).append({ body: sampleMessage(2) }).commit();
    await box.transaction().flags([{ uid1: 2, uid2: 2 }], "add", ["\\Answered", "two"]).commit();
    await box.refresh(); // the engine's own sync renames uid 2's file
    await box.close();
    await o.chownRoot();
    const before = await doveadmFetch(o, "INBOX");
    await o.forceResync("INBOX");
    expect(await doveadmFetch(o, "INBOX")).toEqual(before);
    expect(before.map((m) => m.flags)).toEqual([["\\Seen", "one"], ["\\Answered", "two"]]);
    expect(await engineFetch(storage, "INBOX")).toEqual(before);
    o.assertNoStderrProblems();
  });
});
