/**
 * IDLE for mail changed outside any log: a subscriber of a Maildir or mbox
 * mailbox learns of a client's rename, an MDA's delivery or an mbox append
 * within a second, without anyone calling refresh() — the engine watches
 * the mail files (inotify) and syncs, as Dovecot's IDLE does — and Dovecot
 * then reads the same state.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { filter, firstValueFrom, take, timeout, toArray } from "rxjs";
import { afterEach, expect, it } from "vitest";
import { openStorage, type ChangeBatch, type Mailbox, type Storage } from "../../src/index.js";
import { createOracle, describeInterop, parseFlags, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";

/** The next `count` non-empty batches, failing after 1 s. */
function nextChanges(box: Mailbox, count: number): Promise<ChangeBatch[]> {
  return firstValueFrom(box.changes().pipe(filter((b) => b.changes.length > 0), take(count), toArray(), timeout(1000)));
}

describeInterop("outside changes reach subscribers without a refresh", () => {
  let o: DovecotOracle | undefined;
  let storage: Storage | undefined;
  afterEach(async () => {
    await storage?.close();
    await o?.cleanup();
    storage = o = undefined;
  });

  it("Maildir: a rename adding S and a file dropped into new/", async () => {
    o = createOracle("maildir");
    for (let i = 1; i <= 2; i++) await o.save("INBOX", sampleMessage(i));
    await o.chownRoot();
    storage = openStorage(o.location);
    const box = await storage.openMailbox("INBOX");
    await box.refresh();
    const uidlist = fs.readFileSync(path.join(o.root, "dovecot-uidlist"), "utf8").split("\n");
    const base = uidlist.find((l) => l.startsWith("2 "))!.split(":")[1];
    const dir = fs.existsSync(path.join(o.root, "new", base)) ? "new" : "cur";

    let got = nextChanges(box, 1);
    fs.renameSync(path.join(o.root, dir, base), path.join(o.root, "cur", `${base}:2,S`));
    expect((await got)[0].changes).toMatchObject([{ type: "flags", uid1: 2, uid2: 2, add: ["\\Seen"] }]);

    got = nextChanges(box, 1);
    fs.writeFileSync(path.join(o.root, "new", "1700000000.M1P1.mda"), sampleMessage(3));
    expect((await got)[0].changes).toMatchObject([{ type: "append", uid: 3 }]);

    await o.chownRoot();
    const rows = await o.fetch("uid flags", ["mailbox", "INBOX", "all"]);
    expect(rows.map((r) => [Number(r.uid), parseFlags(r.flags).includes("\\Seen")])).toEqual([[1, false], [2, true], [3, false]]);
  });

  it("mbox: a message an MDA appends", async () => {
    o = createOracle("mbox");
    await o.save("INBOX", sampleMessage(1));
    await o.chownRoot();
    storage = openStorage(o.location);
    const box = await storage.openMailbox("INBOX");
    await box.refresh();
    const got = nextChanges(box, 1);
    const inbox = path.join(o.root, "inbox");
    fs.appendFileSync(inbox, `From mda@example.com Thu Nov 29 22:33:52 2001\n${sampleMessage(2)}\n`);
    expect((await got)[0].changes).toMatchObject([{ type: "append", uid: 2 }]);
    await o.chownRoot();
    expect((await o.fetch("uid", ["mailbox", "INBOX", "all"])).map((r) => Number(r.uid))).toEqual([1, 2]);
  });
});
