/**
 * Maildir++ folders between the engine and Dovecot: "/" in the API is "." on
 * disk; what one creates, renames or deletes the other lists, opens and
 * continues; UIDVALIDITY and mailbox GUID (dovecot-uidlist's G) agree.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { messageCount, type Storage } from "../../src/index.js";
import { createOracle, describeInterop, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";
import { openMaildirStorage } from "../unit/drivers/maildir/open-storage.js";

describeInterop("Maildir++ folders, engine and Dovecot", () => {
  let o: DovecotOracle;
  let storage: Storage;
  beforeEach(() => {
    o = createOracle("maildir", { autoChown: true });
    storage = openMaildirStorage(o.location);
  });
  afterEach(async () => {
    await storage.close();
    await o.cleanup();
  });

  it("folders the engine creates are Dovecot's folders, with the same UIDVALIDITY and GUID", async () => {
    await storage.createMailbox("Work/Projects");
    await storage.createMailbox("Ünï");
    expect(fs.existsSync(path.join(o.root, ".Work.Projects", "maildirfolder"))).toBe(true);
    expect((await o.mailboxList()).sort()).toEqual(["INBOX", "Work", "Work.Projects", "Ünï"].sort());
    const box = await storage.openMailbox("Work/Projects");
    await box.transaction().append({ body: sampleMessage(1), flags: ["\\Flagged"] }).commit();
    await o.save("Work.Projects", sampleMessage(2));
    const st = await o.mailboxStatus("messages uidnext uidvalidity guid", "Work.Projects");
    const uidlist = fs.readFileSync(path.join(o.root, ".Work.Projects", "dovecot-uidlist"), "utf8");
    expect(st).toMatchObject({ messages: "2", uidnext: "3", uidvalidity: String(box.uidValidity) });
    // N3, as doveadm leaves it after two saves into a new folder (it rewrites the header on the second).
    expect(uidlist.split("\n")[0]).toBe(`3 V${box.uidValidity} N3 G${st.guid}`);
    expect(messageCount(await box.refresh())).toBe(2);
    await box.close();
    o.assertNoStderrProblems();
  });

  it("Dovecot's folders are listed and opened; engine renames and deletes are seen by Dovecot", async () => {
    await o.mailboxCreate("A.B");
    await o.mailboxCreate("A.B.C");
    await o.save("A.B", sampleMessage(1));
    expect(await storage.listMailboxes()).toEqual(["INBOX", "A/B", "A/B/C"]);
    const box = await storage.openMailbox("A/B");
    expect(messageCount(await box.refresh())).toBe(1);
    await box.close();
    await storage.renameMailbox("A/B", "Renamed");
    expect((await o.mailboxList()).sort()).toEqual(["INBOX", "Renamed", "Renamed.C"]);
    expect((await o.mailboxStatus("messages", "Renamed")).messages).toBe("1");
    await storage.deleteMailbox("Renamed");
    // "Renamed" stays listed, as the parent Dovecot implies for Renamed.C.
    expect((await o.mailboxList()).sort()).toEqual(["INBOX", "Renamed", "Renamed.C"]);
    expect(fs.existsSync(path.join(o.root, ".Renamed"))).toBe(false);
    expect(fs.readdirSync(o.root).some((n) => n.startsWith(".."))).toBe(false);
    await o.mailboxDelete("Renamed.C");
    expect(await storage.listMailboxes()).toEqual(["INBOX"]);
    o.assertNoStderrProblems();
  });

  it("INDEX= and CONTROL= locations keep index and uidlist where Dovecot looks for them", async () => {
    const idx = path.join(o.dir, "index");
    const ctl = path.join(o.dir, "control");
    const location = `${o.location}:INDEX=${idx}:CONTROL=${ctl}`;
    const s = openMaildirStorage(location);
    await s.createMailbox("Sub");
    const box = await s.openMailbox("Sub");
    await box.transaction().append({ body: sampleMessage(1), flags: ["\\Seen", "kw"] }).commit();
    await box.close();
    await s.close();
    expect(fs.existsSync(path.join(idx, ".Sub", "dovecot.index.log"))).toBe(true);
    expect(fs.existsSync(path.join(ctl, ".Sub", "dovecot-uidlist"))).toBe(true);
    expect(fs.existsSync(path.join(ctl, ".Sub", "dovecot-keywords"))).toBe(true);
    const { execFileSync } = await import("node:child_process");
    execFileSync("chown", ["-R", "65534:65534", idx, ctl]);
    const rows = await o.fetch("uid flags", ["mailbox", "Sub", "all"], { extraSettings: { mail_location: location } });
    expect(rows).toEqual([{ uid: "1", flags: "\\Seen \\Recent kw" }]);
    o.assertNoStderrProblems();
  });
});
