import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterEach, expect, it } from "vitest";
import { openStorage } from "../../src/index.js";
import { createOracle, describeInterop, MAIL_FORMATS, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";

const exec = promisify(execFile);
const bin = path.resolve(__dirname, "../../bin/mailstore.js");
const IMAP_BINARY = "/usr/lib/dovecot/imap";
const ALL_FIELDS = ["messages", "recent", "uidnext", "uidvalidity", "unseen", "highestmodseq", "vsize", "guid", "firstsaved"];

/** `NAME k=v k=v…` (doveadm's flow output of `mailbox status`) → {mailbox, k: v, …} in printed order. */
function parseStatusLine(line: string): Record<string, string> {
  const [mailbox, ...pairs] = line.trim().split(" ");
  return { mailbox, ...Object.fromEntries(pairs.map((p) => [p.slice(0, p.indexOf("=")), p.slice(p.indexOf("=") + 1)])) };
}

describeInterop("mailbox status (all fields) against doveadm mailbox status", () => {
  let o: DovecotOracle;
  afterEach(async () => o?.cleanup());

  const cli = async (...args: string[]) => (await exec(process.execPath, [bin, "-l", o.location, ...args], { env: { ...process.env, MAIL: "" } })).stdout;
  const saveStdin = (body: string) => new Promise<void>((resolve, reject) => {
    const child = execFile(process.execPath, [bin, "-l", o.location, "save", "-m", "INBOX"], { env: { ...process.env, MAIL: "" } }, (err) => (err ? reject(err) : resolve()));
    child.stdin!.end(body);
  });

  /**
   * An IMAP session of Dovecot's own imap binary (PREAUTH), `commands` sent at
   * once (LITERAL+ literals); the caller checks the tagged replies. Through
   * `sh` pipes: on a socket, which Node gives a child for "pipe", imap thinks
   * inetd started it and refuses; on a file it cannot epoll.
   */
  const imap = async (commands: string): Promise<string> => {
    await o.chownRoot();
    const input = path.join(o.dir, "imap-input");
    fs.writeFileSync(input, commands);
    const { stdout } = await exec("/bin/sh", ["-c", 'cat "$1" | "$2" -c "$3" -o "$4" | cat', "sh", input, IMAP_BINARY, o.confPath, `mail_location=${o.location}`], {
      env: { PATH: "/usr/bin:/bin:/usr/sbin:/sbin", USER: "oracle", HOME: o.dir, TZ: "UTC" }, cwd: o.dir, timeout: 30_000,
    });
    return stdout;
  };

  /**
   * Both tools' `mailbox status all MAILBOX`, text and JSON, doveadm first
   * (it may sync; the engine then reads what it left). Compared field by
   * field; `firstsavedSlack` allows that many seconds of difference there.
   */
  const compareStatus = async (mailbox: string, firstsavedSlack = 0): Promise<Record<string, string>> => {
    await o.chownRoot();
    const theirText = parseStatusLine((await o.run(["mailbox", "status", "all", mailbox])).stdout);
    const theirJson = await o.mailboxStatus("all", mailbox);
    const oursText = parseStatusLine(await cli("mailbox", "status", "all", mailbox));
    const oursJson = JSON.parse(await cli("mailbox", "status", "--json", "all", mailbox)) as Array<Record<string, string>>;
    await o.chownRoot();
    expect(Object.keys(theirText)).toEqual(["mailbox", ...ALL_FIELDS]);
    expect(theirJson).toEqual(theirText);
    expect(Object.keys(oursText)).toEqual(Object.keys(theirText));
    expect(oursJson).toEqual([oursText]);
    const pick = (row: Record<string, string>) => (firstsavedSlack > 0 ? { ...row, firstsaved: "" } : row);
    expect(pick(oursText)).toEqual(pick(theirText));
    if (firstsavedSlack > 0) expect(Math.abs(Number(oursText.firstsaved) - Number(theirText.firstsaved))).toBeLessThanOrEqual(firstsavedSlack);
    return theirText;
  };

  for (const format of MAIL_FORMATS) {
    it(`${format}: a mailbox Dovecot wrote (saves, IMAP APPEND + SELECT, flags, an expunge) and an empty one`, async () => {
      o = createOracle(format);
      await o.mailboxCreate("Empty");
      await o.save("INBOX", sampleMessage(1));
      // Dovecot caches date.save once something asked for it; mbox files have
      // no save date, so until then Dovecot answers with the time it is asked.
      // Asking now makes the messages saved from here on carry their save time.
      await o.run(["mailbox", "status", "firstsaved", "INBOX"]);
      // APPEND with a flag (Maildir: straight into cur/, so nothing renames the
      // file later: its ctime stays the save time Dovecot cached), then SELECT:
      // first_recent_uid becomes 3.
      const m2 = Buffer.from(sampleMessage(2).replace(/\r?\n/g, "\r\n"));
      const out = await imap(`a APPEND INBOX (\\Seen) {${m2.length}+}\r\n${m2.toString()}\r\nb SELECT INBOX\r\nc LOGOUT\r\n`);
      expect(out).toMatch(/^a OK/m);
      expect(out).toMatch(/^b OK/m);
      // No chownRoot() here: everything so far is Dovecot's user's, and a chown would move the
      // files' ctime (an sdbox save date without a cached one) into the next second.
      await o.save("INBOX", sampleMessage(3));
      await o.save("INBOX", sampleMessage(4, { body: "a longer body\nover\nthree lines\n" }));
      await o.flags("add", "\\Flagged $Label1", "mailbox INBOX uid 3");
      await o.flags("add", "\\Seen", "mailbox INBOX uid 4");
      await o.expunge("mailbox INBOX uid 1");

      const theirs = await compareStatus("INBOX");
      // uid 2 (first), 3, 4 left; 3 and 4 came after the SELECT.
      expect(theirs).toMatchObject({ messages: "3", recent: "2", uidnext: "5", unseen: "1" });
      expect(theirs.guid).toMatch(/^[0-9a-f]{32}$/);
      // Dovecot's mailbox, unchanged by the engine's reading: the same again.
      await compareStatus("INBOX");

      const empty = await compareStatus("Empty");
      expect(empty).toMatchObject({ messages: "0", recent: "0", vsize: "0", firstsaved: "never" });
      o.assertNoStderrProblems();
    });

    it(`${format}: a mailbox the engine wrote (CLI and API), empty and with messages`, async () => {
      o = createOracle(format);
      // INBOX created by the engine's first open (status itself writes nothing: it is read-only).
      const first = openStorage(o.location);
      await (await first.openMailbox("INBOX")).close();
      await first.close();
      await o.chownRoot();
      const created = parseStatusLine(await cli("mailbox", "status", "all", "INBOX"));
      const empty = await compareStatus("INBOX");
      expect(empty).toEqual(created);
      expect(empty).toMatchObject({ messages: "0", recent: "0", vsize: "0", firstsaved: "never" });

      const storage = openStorage(o.location);
      try {
        const box = await storage.openMailbox("INBOX");
        await box.transaction()
          .append({ body: sampleMessage(1) })
          .append({ body: sampleMessage(2), flags: ["\\Seen"] })
          .append({ body: sampleMessage(3, { body: "crlf\r\nlines\r\n" }) })
          .commit();
        await box.transaction().flags([{ uid1: 3, uid2: 3 }], "add", ["\\Flagged", "$Label1"]).expunge([{ uid1: 1, uid2: 1 }]).commit();
        expect(box.guid()).toBe(empty.guid);
      } finally {
        await storage.close();
      }
      // The in-process engine wrote as root; the CLI, like doveadm, runs as the store's owner.
      await o.chownRoot();
      await saveStdin(sampleMessage(4));
      await cli("flags", "add", "\\Seen", "mailbox", "INBOX", "uid", "4");
      // mbox keeps no save date: Dovecot answers with the time it first looks
      // (then caches it in dovecot.index.cache, which the engine does not
      // read); the engine answers with the From_ line's time, the save time.
      const theirs = await compareStatus("INBOX", format === "mbox" ? 3 : 0);
      expect(theirs).toMatchObject({ messages: "3", recent: "3", uidnext: "5", unseen: "1", guid: empty.guid });

      // After Dovecot's SELECT (first_recent_uid = next_uid) and one more engine save.
      const out = await imap("a SELECT INBOX\r\nb LOGOUT\r\n");
      expect(out).toMatch(/^a OK/m);
      await o.chownRoot();
      await saveStdin(sampleMessage(5));
      const after = await compareStatus("INBOX", format === "mbox" ? 3 : 0);
      expect(after).toMatchObject({ messages: "4", recent: "1", uidnext: "6" });
      o.assertNoStderrProblems();
    });
  }
});
