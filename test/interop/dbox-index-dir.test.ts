/**
 * `INDEX=` on sdbox and mdbox (issue 13): the engine keeps every index file
 * where Dovecot does — mailbox indexes in `<INDEX>/mailboxes/<name>/`, the
 * mdbox map in `<INDEX>/storage/`, dovecot.mailbox.log in `<INDEX>/` —
 * while mail stays in the mail root, so each side sees the other's work.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, expect, it } from "vitest";
import { MailstoreError, openStorage, type Storage } from "../../src/index.js";
import { createOracle, describeInterop, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";
import { doveadmFetch, engineFetch } from "../helpers/fetch-compare.js";

const STATUS = "messages uidnext uidvalidity unseen highestmodseq guid";

describeInterop("INDEX= on sdbox and mdbox, against Dovecot", () => {
  let o: DovecotOracle;
  let storage: Storage | undefined;
  afterEach(async () => {
    await storage?.close();
    storage = undefined;
    await o?.cleanup();
  });

  /** The engine's mailbox status in doveadm's shape (strings). */
  const engineStatus = async (name: string): Promise<Record<string, string>> => {
    const box = await storage!.openMailbox(name);
    try {
      await box.refresh();
      const s = await box.status(["messages", "uidnext", "uidvalidity", "unseen", "highestmodseq", "guid"]);
      return { mailbox: name, ...Object.fromEntries(Object.entries(s).map(([k, v]) => [k, String(v)])) };
    } finally {
      await box.close();
    }
  };

  /** Every mailbox: the same list (beside doveadm's hierarchy-only names), the same messages (uid, flags, guid, text) and the same status on both sides. */
  const expectSameView = async (): Promise<string[]> => {
    await o.chownRoot();
    const names = await storage!.listMailboxes();
    // doveadm also lists names that are only hierarchy (the parents of nested mailboxes).
    const theirs = (await o.mailboxList()).filter((n) => names.includes(n) || !names.some((m) => m.startsWith(`${n}/`)));
    expect(theirs.sort()).toEqual(names);
    for (const name of names) {
      expect(await engineFetch(storage!, name), name).toEqual(await doveadmFetch(o, name));
      expect(await engineStatus(name), name).toEqual(await o.mailboxStatus(STATUS, name));
    }
    return names;
  };

  /** The index files of `name` are in the INDEX= tree, and none are beside its mail. */
  const expectIndexInIndexTree = (name: string): void => {
    expect(fs.existsSync(path.join(o.mailboxIndexDir(name), "dovecot.index.log")), name).toBe(true);
    const mailDir = path.join(o.root, "mailboxes", ...name.split("/"), "dbox-Mails");
    expect(fs.readdirSync(mailDir).filter((f) => f.startsWith("dovecot.index")), name).toEqual([]);
  };

  for (const format of ["sdbox", "mdbox"] as const) {
    it(`${format}: engine writes (save, flags, copy, expunge, mailbox create/rename/delete), doveadm sees the same, index files where Dovecot keeps them`, async () => {
      o = createOracle(format, { index: true });
      storage = openStorage(o.location);
      const inbox = await storage.openMailbox("INBOX");
      await inbox.transaction()
        .append({ body: sampleMessage(1), flags: ["\\Seen", "$Label1"] })
        .append({ body: sampleMessage(2) })
        .append({ body: sampleMessage(3), flags: ["\\Draft"] })
        .append({ body: sampleMessage(4) })
        .commit();
      await inbox.transaction().flags([{ uid1: 2, uid2: 3 }], "add", ["\\Flagged", "work"]).commit();
      await storage.createMailbox("Work");
      const work = await storage.openMailbox("Work");
      await inbox.transaction().copyTo(work, [{ uid1: 1, uid2: 2 }]);
      await inbox.transaction().expunge([{ uid1: 3, uid2: 3 }]).commit();
      await work.transaction().flags([{ uid1: 1, uid2: 1 }], "remove", ["\\Seen"]).commit();
      await inbox.close();
      await work.close();

      await storage.createMailbox("Old/Child");
      const child = await storage.openMailbox("Old/Child");
      await child.transaction().append({ body: sampleMessage(5), flags: ["\\Answered"] }).commit();
      await child.close();
      await storage.renameMailbox("Old/Child", "New/Child");
      await storage.createMailbox("Gone");
      await storage.deleteMailbox("Gone");
      await storage.subscribe("Work");
      if (format === "mdbox") await storage.purge();

      for (const name of ["INBOX", "Work", "New/Child"]) expectIndexInIndexTree(name);
      // Rename and delete took the index directories along, and left no empty parents behind.
      for (const gone of ["Old", "Gone"]) {
        expect(fs.existsSync(path.join(o.indexRoot!, "mailboxes", gone)), gone).toBe(false);
        expect(fs.existsSync(path.join(o.root, "mailboxes", gone)), gone).toBe(false);
      }
      if (format === "mdbox") {
        expect(fs.readdirSync(o.mapIndexDir()).filter((f) => f.startsWith("dovecot.map.index"))).toContain("dovecot.map.index.log");
        expect(fs.readdirSync(o.storageDir()).filter((f) => f.startsWith("dovecot.map.index"))).toEqual([]);
      }

      expect(await expectSameView()).toEqual(["INBOX", "New/Child", "Work"]);
      // dovecot.mailbox.log is in the index root, subscriptions in the mail root, as doveadm keeps them.
      expect(fs.existsSync(path.join(o.indexRoot!, "dovecot.mailbox.log"))).toBe(true);
      expect(fs.existsSync(path.join(o.root, "dovecot.mailbox.log"))).toBe(false);
      expect((await o.run(["mailbox", "list", "-s"])).stdout.trim().split("\n")).toEqual(["Work"]);
      expect((await doveadmFetch(o, "INBOX")).map((m) => [m.uid, m.flags])).toEqual([
        [1, ["$Label1", "\\Seen"]], [2, ["\\Flagged", "work"]], [4, []],
      ]);
      // Dovecot's next save goes on from the engine's index (issue 13: it used to fail with "u.1 already exists").
      await o.save("Work", sampleMessage(6));
      expect((await o.fetch("uid", ["mailbox", "Work", "all"])).map((r) => r.uid)).toEqual(["1", "2", "3"]);
      await expectSameView();
      o.assertNoStderrProblems();
    });

    it(`${format}: Dovecot writes (save, flags, copy, move, expunge, mailbox create/rename/delete), the engine reads the same`, async () => {
      o = createOracle(format, { index: true });
      await o.mailboxCreate("Sub/Child");
      await o.mailboxCreate("Temp");
      for (let i = 1; i <= 5; i++) await o.save("INBOX", sampleMessage(i));
      await o.flags("add", "\\Seen $Label1 foo", "mailbox INBOX uid 1:3");
      await o.flags("remove", "foo", "mailbox INBOX uid 2");
      await o.copy("Sub/Child", "mailbox INBOX uid 1");
      await o.move("Sub/Child", "mailbox INBOX uid 4");
      await o.expunge("mailbox INBOX uid 5");
      await o.save("Temp", sampleMessage(6));
      await o.run(["mailbox", "rename", "Temp", "Kept/Renamed"]);
      await o.mailboxCreate("Gone");
      await o.mailboxDelete("Gone");
      if (format === "mdbox") await o.purge();

      storage = openStorage(o.location);
      expect(await expectSameView()).toEqual(["INBOX", "Kept/Renamed", "Sub/Child"]);
      expect((await engineFetch(storage, "Sub/Child")).map((m) => m.uid)).toEqual([1, 2]);
      expect((await engineFetch(storage, "Kept/Renamed")).map((m) => m.text)).toEqual([sampleMessage(6)]);
      o.assertNoStderrProblems();
    });

    it(`${format}: engine, Dovecot, engine interleaved on one mailbox and across mailboxes`, async () => {
      o = createOracle(format, { index: true });
      storage = openStorage(o.location);
      const box = await storage.openMailbox("INBOX");
      await box.transaction().append({ body: sampleMessage(1), flags: ["\\Seen"] }).append({ body: sampleMessage(2) }).commit();
      await storage.createMailbox("Archive");
      await box.close();
      await o.chownRoot();

      await o.save("INBOX", sampleMessage(3));
      await o.flags("add", "\\Flagged dovecot-kw", "mailbox INBOX uid 1:*");
      await o.expunge("mailbox INBOX uid 2");
      await o.copy("Archive", "mailbox INBOX uid 1");
      await o.save("Archive", sampleMessage(4));

      const box2 = await storage.openMailbox("INBOX");
      await box2.transaction().append({ body: sampleMessage(5) }).flags([{ uid1: 1, uid2: 1 }], "remove", ["\\Seen"]).commit();
      const archive = await storage.openMailbox("Archive");
      await box2.transaction().copyTo(archive, [{ uid1: 3, uid2: 3 }]);
      await archive.transaction().expunge([{ uid1: 1, uid2: 1 }]).commit();
      await box2.close();
      await archive.close();
      if (format === "mdbox") await storage.purge();

      await expectSameView();
      expect((await doveadmFetch(o, "INBOX")).map((m) => [m.uid, m.flags])).toEqual([
        [1, ["\\Flagged", "dovecot-kw"]], [3, ["\\Flagged", "dovecot-kw"]], [4, []],
      ]);
      expect((await doveadmFetch(o, "Archive")).map((m) => m.uid)).toEqual([2, 3]);
      // Dovecot goes on after the engine, and the engine after Dovecot once more.
      await o.save("INBOX", sampleMessage(6));
      await o.flags("add", "\\Seen", "mailbox Archive all");
      const box3 = await storage.openMailbox("INBOX");
      await box3.transaction().expunge([{ uid1: 3, uid2: 3 }]).commit();
      await box3.close();
      expect((await doveadmFetch(o, "INBOX")).map((m) => m.uid)).toEqual([1, 4, 5]);
      await expectSameView();
      o.assertNoStderrProblems();
    });

    it(`${format}: force-resync with INDEX= rebuilds the index Dovecot reads, from the mail the engine left`, async () => {
      o = createOracle(format, { index: true });
      storage = openStorage(o.location);
      const box = await storage.openMailbox("INBOX");
      await box.transaction().append({ body: sampleMessage(1), flags: ["\\Seen", "kw"] }).append({ body: sampleMessage(2) }).commit();
      await box.close();
      await storage.forceResync("*");
      await expectSameView();
      expect((await doveadmFetch(o, "INBOX")).map((m) => [m.uid, m.flags])).toEqual([[1, ["\\Seen", "kw"]], [2, []]]);
      // A lost index tree: the engine rebuilds it where Dovecot looks for it.
      await storage.close();
      fs.rmSync(o.indexRoot!, { recursive: true });
      fs.mkdirSync(o.indexRoot!, { mode: 0o755 });
      storage = openStorage(o.location);
      await storage.forceResync(format === "mdbox" ? "*" : "INBOX");
      await expectSameView();
      expect((await doveadmFetch(o, "INBOX")).map((m) => m.uid)).toEqual([1, 2]);
      o.assertNoStderrProblems();
    });
  }

  it("sdbox with ALT= and INDEX=: altmove both ways, each side sees the other's moves", async () => {
    o = createOracle("sdbox", { index: true, alt: true });
    storage = openStorage(o.location);
    const box = await storage.openMailbox("INBOX");
    await box.transaction().append({ body: sampleMessage(1) }).append({ body: sampleMessage(2), flags: ["\\Seen"] }).commit();
    await box.close();
    await storage.altMove("INBOX", [1, 2], true);
    expect(fs.readdirSync(path.join(o.dir, "alt", "mailboxes", "INBOX", "dbox-Mails")).sort()).toEqual(["u.1", "u.2"]);
    expectIndexInIndexTree("INBOX");
    await expectSameView();
    await o.run(["altmove", "-r", "mailbox", "INBOX", "uid", "2"]);
    await storage.altMove("INBOX", [1], false);
    expect(fs.readdirSync(path.join(o.root, "mailboxes", "INBOX", "dbox-Mails")).filter((f) => f.startsWith("u.")).sort()).toEqual(["u.1", "u.2"]);
    await expectSameView();
    o.assertNoStderrProblems();
  });

  it("INDEX=MEMORY: refused with a typed error, as Dovecot cannot open such an sdbox location either", async () => {
    o = createOracle("sdbox");
    const location = `${o.location}:INDEX=MEMORY`;
    for (const format of ["sdbox", "mdbox"]) {
      let caught: unknown;
      try {
        openStorage(location.replace(/^sdbox:/, `${format}:`));
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(MailstoreError);
      expect((caught as MailstoreError).code).toBe("UNSUPPORTED");
    }
    const r = await o.run(["save", "-m", "INBOX"], { input: sampleMessage(1), allowFailure: true, extraSettings: { mail_location: location } });
    expect(r.code).toBe(75);
    expect(r.stderr).toContain("Couldn't create index file");
  });
});
