import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseMbox } from "../../../../src/drivers/mbox/scan.js";
import { rebuildHeader } from "../../../../src/drivers/mbox/managed-headers.js";
import { formatPseudoMessage, relistPseudoImap } from "../../../../src/drivers/mbox/pseudo.js";
import { MailFlag } from "../../../../src/log/types.js";
import { openStorage, flagNames, lookupUid, messageCount, recordAt, type Storage } from "../../../../src/index.js";

const msg = (i: number, body = `Body ${i}\n`) => `From: a${i}@b\nSubject: s${i}\nMessage-ID: <m${i}@x>\n\n${body}`;

describe("rebuildHeader", () => {
  const header = Buffer.from("From: a@b\nStatus: O\nX-Foo: 1\n continued\nX-UID: 3\nX-Keywords: a                    \nContent-Length: 5\n");
  it("keeps other lines in order and puts Dovecot's headers at the end", () => {
    const out = rebuildHeader(header, { uid: 3, flags: MailFlag.SEEN | MailFlag.FLAGGED, keywords: ["a", "b"], recent: false, bodyLength: 5 })!.toString();
    expect(out.startsWith("From: a@b\nX-Foo: 1\n continued\nX-UID: 3\nStatus: RO\nX-Status: F\nX-Keywords: a b ")).toBe(true);
    expect(out.endsWith("\nContent-Length: 5\n")).toBe(true);
  });
  it("pads to an exact length, or reports that it does not fit", () => {
    const exact = rebuildHeader(header, { uid: 3, flags: 0, keywords: ["a"], recent: false, bodyLength: 5 }, header.length)!;
    expect(exact.length).toBe(header.length);
    expect(rebuildHeader(header, { uid: 3, flags: 0x1f, keywords: ["a-very-long-keyword-that-cannot-fit-in-there"], recent: false, bodyLength: 5 }, header.length)).toBeUndefined();
  });
});

describe("relistPseudoImap", () => {
  const header = formatPseudoMessage(1700000000, 7, ["a"]);
  const block = header.subarray(header.indexOf(0x0a) + 1, header.indexOf("\n\n") + 1);
  it("lists keywords within the X-IMAP line's padding, keeping the header's length", () => {
    const out = relistPseudoImap(block, 1700000000, 9, ["a", "$Work"])!;
    expect(out.length).toBe(block.length);
    expect(out.toString("latin1")).toMatch(/^X-IMAP: 1700000000 0000000009 a \$Work {10,}$/m);
    expect(out.toString("latin1").replace(/^X-IMAP:.*$/m, "")).toBe(block.toString("latin1").replace(/^X-IMAP:.*$/m, ""));
  });
  it("reports a list that does not fit", () => {
    expect(relistPseudoImap(block, 1700000000, 9, ["a", "x".repeat(60)])).toBeUndefined();
  });
});

describe("mbox mailbox (engine only)", () => {
  let dir: string;
  let storage: Storage;
  const inbox = () => path.join(dir, "inbox");
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mbox-unit-"));
    storage = openStorage(`mbox:${dir}:INBOX=${dir}/inbox`);
  });
  afterEach(async () => {
    await storage.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("saves in Dovecot's layout, rewrites flags in place, and a refresh with no change writes nothing", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.refresh();
    await box.transaction().append({ body: msg(1), flags: ["\\Seen"] }).append({ body: msg(2), flags: ["kw1"] }).commit();
    const parsed = parseMbox(fs.readFileSync(inbox()));
    expect(parsed.imapBase).toEqual({ uidValidity: box.uidValidity, uidLast: 2, keywords: ["kw1"] });
    expect(parsed.messages.map((m) => [m.uid, m.flags, m.keywords])).toEqual([[1, MailFlag.SEEN, []], [2, 0, ["kw1"]]]);
    const ino = fs.statSync(inbox()).ino;
    const size = fs.statSync(inbox()).size;

    await box.transaction().flags([{ uid1: 1, uid2: 2 }], "add", ["\\Flagged", "\\Answered", "kw2"]).commit();
    await box.refresh();
    expect(fs.statSync(inbox()).ino).toBe(ino);
    expect(fs.statSync(inbox()).size).toBe(size);
    const after = parseMbox(fs.readFileSync(inbox()));
    expect(after.messages.map((m) => [m.flags, m.keywords])).toEqual([
      [MailFlag.SEEN | MailFlag.FLAGGED | MailFlag.ANSWERED, ["kw2"]],
      [MailFlag.FLAGGED | MailFlag.ANSWERED, ["kw1", "kw2"]],
    ]);
    const pos = box.position;
    await box.refresh();
    expect(box.position).toEqual(pos);
    await box.close();
  });

  it("moves the rest of the file when headers outgrow their padding; bodies stay byte for byte", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.refresh();
    const bodies = [msg(1, "From the start\n>From x\n"), msg(2), msg(3, "no newline at end")];
    await box.transaction().append({ body: bodies[0] }).append({ body: bodies[1] }).append({ body: bodies[2] }).commit();
    const ino = fs.statSync(inbox()).ino;
    const many = Array.from({ length: 12 }, (_, i) => `keyword-number-${i}`);
    const size = fs.statSync(inbox()).size;
    await box.transaction().flags([{ uid1: 2, uid2: 2 }], "add", many).commit();
    await box.refresh();
    // In place: the same file, grown by what the headers needed beyond the following padding.
    expect(fs.statSync(inbox()).ino).toBe(ino);
    expect(fs.statSync(inbox()).size).toBeGreaterThan(size);
    const parsed = parseMbox(fs.readFileSync(inbox()));
    expect(parsed.messages.map((m) => m.uid)).toEqual([1, 2, 3]);
    expect(parsed.messages[1].rawKeywords).toEqual(many);
    expect(lookupUid(box.state, 2)!.keywords).toEqual(many);
    expect(Buffer.from(await box.readMessage(1)).toString()).toBe(bodies[0]);
    expect(Buffer.from(await box.readMessage(3)).toString()).toBe(bodies[2] + "\n");
    // Offsets in the index follow the rewrite: reading does not need a scan.
    expect(lookupUid(box.state, 3)!.ext("mbox")).toBeDefined();
    await box.close();
  });

  it("expunging everything leaves Dovecot's pseudo message; saving continues after it", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.refresh();
    await box.transaction().append({ body: msg(1) }).append({ body: msg(2) }).commit();
    await box.transaction().expunge([{ uid1: 1, uid2: 2 }]).commit();
    expect(messageCount(box.state)).toBe(0);
    let parsed = parseMbox(fs.readFileSync(inbox()));
    expect(parsed.messages.map((m) => m.pseudo)).toEqual([true]);
    expect(parsed.imapBase?.uidLast).toBe(2);
    await box.transaction().append({ body: msg(3) }).commit();
    parsed = parseMbox(fs.readFileSync(inbox()));
    expect(parsed.messages.map((m) => [m.pseudo, m.uid])).toEqual([[true, 0], [false, 3]]);
    expect(parsed.imapBase?.uidLast).toBe(3);
    await box.close();
    const again = await storage.openMailbox("INBOX");
    const st = await again.refresh();
    expect(recordAt(st, 1)!.uid).toBe(3);
    await again.close();
  });

  it("after the pseudo message, a keyword new to the mailbox is listed in its X-IMAP: a save's, an MDA-then-save's and a flag change's (a reader without the index keeps them)", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.refresh();
    await box.transaction().append({ body: msg(1) }).commit();
    await box.transaction().expunge([{ uid1: 1, uid2: 1 }]).commit();
    await box.transaction().append({ body: msg(2), flags: ["$Work"] }).commit();
    let parsed = parseMbox(fs.readFileSync(inbox()));
    expect(parsed.messages.map((m) => [m.pseudo, m.uid, m.keywords])).toEqual([[true, 0, []], [false, 2, ["$Work"]]]);
    expect(parsed.imapBase).toMatchObject({ uidLast: 2, keywords: ["$Work"] });
    // The save goes before a message an MDA delivered (insertBefore).
    fs.appendFileSync(inbox(), "From mda@example.com Mon Dec  7 04:00:00 2026\nFrom: mda@example.com\nSubject: delivered\n\nThree\n\n");
    await box.transaction().append({ body: msg(3), flags: ["$Home"] }).commit();
    parsed = parseMbox(fs.readFileSync(inbox()));
    expect(parsed.messages.map((m) => [m.pseudo, m.uid, m.keywords])).toEqual([[true, 0, []], [false, 2, ["$Work"]], [false, 3, ["$Home"]], [false, 4, []]]);
    expect(parsed.imapBase).toMatchObject({ uidLast: 3, keywords: ["$Work", "$Home"] });
    await box.refresh();
    await box.transaction().flags([{ uid1: 2, uid2: 2 }], "add", ["later"]).commit();
    await box.refresh();
    parsed = parseMbox(fs.readFileSync(inbox()));
    expect(parsed.imapBase?.keywords).toEqual(["$Work", "$Home", "later"]);
    expect(parsed.messages[1].keywords).toEqual(["$Work", "later"]);
    await box.close();
  });

  it("an MDA's message is taken lazily (DIRTY, header MD5) and gets its X-UID at the next rewrite", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.refresh();
    await box.transaction().append({ body: msg(1) }).append({ body: msg(2) }).commit();
    fs.appendFileSync(inbox(), "From mda@x  Mon Nov 23 10:00:00 2026\nFrom: m@d\nMessage-ID: <mda@x>\nStatus: RO\nX-Status: F\nX-Keywords: unknown\n\nhi\n\n");
    let st = await box.refresh();
    const r = lookupUid(st, 3)!;
    expect(flagNames(r.flags & 0x1f).sort()).toEqual(["\\Flagged", "\\Seen"]);
    expect(r.keywords).toEqual([]);
    expect(r.flags & MailFlag.DIRTY).toBe(MailFlag.DIRTY);
    expect(r.ext("header-md5")!.some((b) => b !== 0)).toBe(true);
    // The file changes again (another delivery): the MDA message keeps UID 3 by its MD5.
    fs.appendFileSync(inbox(), "From mda@x  Mon Nov 23 10:00:01 2026\nFrom: n@d\n\nho\n\n");
    st = await box.refresh();
    expect([3, 4].map((u) => lookupUid(st, u) !== undefined)).toEqual([true, true]);
    await box.transaction().expunge([{ uid1: 1, uid2: 1 }]).commit();
    const parsed = parseMbox(fs.readFileSync(inbox()));
    expect(parsed.messages.map((m) => [m.uid, m.uidFromHeader])).toEqual([[2, true], [3, true], [4, true]]);
    expect(lookupUid(box.state, 3)!.flags & MailFlag.DIRTY).toBe(0);
    expect(Buffer.from(await box.readMessage(3)).toString()).toBe("From: m@d\nMessage-ID: <mda@x>\n\nhi\n");
    await box.close();
  });

  it("a save while the file holds messages the index does not know goes before them", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.refresh();
    await box.transaction().append({ body: msg(1) }).commit();
    fs.appendFileSync(inbox(), "From mda@x  Mon Nov 23 10:00:00 2026\nFrom: m@d\n\nmda\n\n");
    const res = await box.transaction().append({ body: msg(2) }).commit();
    expect(res.appendedUids).toEqual([2]);
    const st = await box.refresh();
    expect([1, 2, 3].map((u) => lookupUid(st, u) !== undefined)).toEqual([true, true, true]);
    expect(Buffer.from(await box.readMessage(2)).toString()).toBe(msg(2));
    expect(Buffer.from(await box.readMessage(3)).toString()).toBe("From: m@d\n\nmda\n");
    await box.close();
  });

  it("reads the right message when the file moved under the index (before any refresh)", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.refresh();
    await box.transaction().append({ body: msg(1) }).append({ body: msg(2) }).append({ body: msg(3) }).commit();
    // Another program removes message 1: every from offset in the index is now wrong.
    const data = fs.readFileSync(inbox(), "latin1");
    fs.writeFileSync(inbox(), data.slice(data.indexOf("\nFrom ") + 1));
    expect(Buffer.from(await box.readMessage(3)).toString()).toBe(msg(3));
    expect((await box.backend.messageInfo(box.state, 2)).receivedTime).toBeGreaterThan(0);
    await expect(box.readMessage(1)).rejects.toThrow(/no longer in the mbox/);
    await box.close();
  });

  it("lists folders as files and subfolders as directories; creates, renames, deletes", async () => {
    await storage.createMailbox("Work/Projects");
    await storage.createMailbox("Archive");
    expect(fs.statSync(path.join(dir, "Work", "Projects")).isFile()).toBe(true);
    expect(fs.existsSync(path.join(dir, "Work", ".imap", "Projects", "dovecot.index.log"))).toBe(true);
    expect(await storage.listMailboxes()).toEqual(["INBOX", "Archive", "Work/Projects"]);
    await storage.renameMailbox("Archive", "Old");
    expect(await storage.listMailboxes()).toEqual(["INBOX", "Old", "Work/Projects"]);
    await storage.deleteMailbox("Old");
    expect(await storage.listMailboxes()).toEqual(["INBOX", "Work/Projects"]);
  });
});
