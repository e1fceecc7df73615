/**
 * Maildir++ and mbox files against Dovecot 2.3: Dovecot writes, our parsers
 * read every file (UIDs, flags, keywords, GUIDs, message bytes equal doveadm
 * fetch; uidlist and keywords files re-encode byte for byte; mbox saves are
 * reproduced byte for byte by our writer); and files our writers produce are
 * read by doveadm with the UIDs, flags and keywords we wrote.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { flagNames } from "../../src/shared/flags.js";
import { classifyMaildirRootEntry, maildirMailboxDir, maildirParentName, MAILDIR_FOLDER_MARKER } from "../../src/drivers/maildir/folders.js";
import { formatMaildirFileName, maildirBaseName, parseMaildirFileName } from "../../src/drivers/maildir/filename.js";
import {
  formatMaildirKeywords,
  maildirKeywordIndex,
  maildirKeywordNames,
  MAILDIR_KEYWORDS_FILE_NAME,
  parseMaildirKeywords,
} from "../../src/drivers/maildir/keywords-file.js";
import type { MaildirKeywords } from "../../src/drivers/maildir/keywords-file.js";
import { newMaildirBaseName } from "../../src/drivers/maildir/unique-name.js";
import { formatUidlist, MAILDIR_UIDLIST_FILE_NAME, parseUidlist, uidlistMessageGuid } from "../../src/drivers/maildir/uidlist.js";
import { resolveMailLocation } from "../../src/drivers/location-detect.js";
import { parseMbox } from "../../src/drivers/mbox/scan.js";
import type { MboxMessage } from "../../src/drivers/mbox/scan.js";
import { bufferSource } from "../../src/drivers/mbox/source.js";
import { mboxMessageText } from "../../src/drivers/mbox/text.js";
import { formatMbox, formatMboxMessage } from "../../src/drivers/mbox/write.js";
import { MailFlag } from "../../src/log/types.js";
import { createOracle, describeInterop, parseFlags, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";

/** Bodies that test From_-line handling: plain, quoted, and a valid From_ line. */
const TRICKY_BODIES = [
  "From the start\n>From quoted\nbody\n",
  "line1\nFrom someone@example.com  Mon Nov 23 09:40:07 2026\n>>From twice\nlast\n",
  "no trailing newline",
  "",
];

function trickyMessage(i: number): string {
  return sampleMessage(i, { body: TRICKY_BODIES[(i - 1) % TRICKY_BODIES.length] });
}

/** "\Seen $Label1" style flag list from MailFlag bits and keyword names, sorted. */
function flagList(flags: number, keywords: readonly string[]): string[] {
  return [...flagNames(flags), ...keywords].sort();
}

function sorted(flags: string[]): string[] {
  return [...flags].sort();
}

/** Every file of a Maildir (cur/ and new/), by base name. */
function maildirFiles(dir: string): Map<string, { dir: "cur" | "new"; name: string }> {
  const files = new Map<string, { dir: "cur" | "new"; name: string }>();
  for (const sub of ["cur", "new"] as const) {
    for (const name of fs.readdirSync(path.join(dir, sub))) {
      if (!name.startsWith(".")) files.set(maildirBaseName(name), { dir: sub, name });
    }
  }
  return files;
}

/** Reads one Maildir mailbox with our parsers: uid → flags, keywords, guid, bytes. */
function readMaildirMailbox(dir: string): Array<{ uid: number; flags: string[]; guid: string; bytes: Buffer }> {
  const uidlistBytes = fs.readFileSync(path.join(dir, MAILDIR_UIDLIST_FILE_NAME));
  const uidlist = parseUidlist(uidlistBytes, path.join(dir, MAILDIR_UIDLIST_FILE_NAME));
  expect(formatUidlist(uidlist)).toBe(uidlistBytes.toString("utf8"));
  const kwPath = path.join(dir, MAILDIR_KEYWORDS_FILE_NAME);
  let keywords: MaildirKeywords = [];
  if (fs.existsSync(kwPath)) {
    const kwText = fs.readFileSync(kwPath, "utf8");
    keywords = parseMaildirKeywords(kwText);
    expect(formatMaildirKeywords(keywords)).toBe(kwText);
  }
  const files = maildirFiles(dir);
  const out: Array<{ uid: number; flags: string[]; guid: string; bytes: Buffer }> = [];
  for (const rec of uidlist.records) {
    const file = files.get(maildirBaseName(rec.fileName));
    if (!file) continue; // expunged, record not yet dropped
    const parsed = parseMaildirFileName(file.name);
    const bytes = fs.readFileSync(path.join(dir, file.dir, file.name));
    expect(parsed.size).toBe(bytes.length);
    out.push({ uid: rec.uid, flags: flagList(parsed.flags, maildirKeywordNames(keywords, parsed.keywordIndexes)), guid: uidlistMessageGuid(rec), bytes });
  }
  return out;
}

/** Reads the mbox at `file` with our parser and checks it against doveadm for `mailbox`. */
async function expectMboxAsDoveadm(o: DovecotOracle, file: string, mailbox: string): Promise<MboxMessage[]> {
  const data = fs.readFileSync(file);
  const messages = parseMbox(data, { path: file }).messages.filter((m) => !m.pseudo);
  const rows = await o.fetch("uid flags", ["mailbox", mailbox, "all"]);
  expect(messages.map((m) => m.uid)).toEqual(rows.map((r) => Number(r.uid)));
  expect(messages.map((m) => flagList(m.flags, m.keywords))).toEqual(rows.map((r) => sorted(parseFlags(r.flags))));
  for (const m of messages) {
    const text = Buffer.from(mboxMessageText(bufferSource(data), m));
    expect(text.equals(await o.fetchText(mailbox, m.uid)), `uid ${m.uid} text`).toBe(true);
  }
  return messages;
}

describeInterop("Maildir++ and mbox files against Dovecot 2.3", () => {
  describe("maildir written by Dovecot", () => {
    let o: DovecotOracle;
    beforeAll(async () => {
      o = createOracle("maildir");
      for (let i = 1; i <= 6; i++) await o.save("INBOX", trickyMessage(i));
      await o.flags("add", "\\Seen \\Flagged $Label1 foo", "mailbox INBOX uid 1");
      await o.flags("add", "bar \\Draft", "mailbox INBOX uid 3");
      await o.flags("add", "\\Answered \\Deleted $Label1", "mailbox INBOX uid 4");
      await o.flags("add", "foo", "mailbox INBOX uid 5");
      await o.flags("remove", "foo", "mailbox INBOX uid 5");
      await o.expunge("mailbox INBOX uid 2");
      await o.mailboxCreate("Sub.Child");
      await o.copy("Sub.Child", "mailbox INBOX uid 1");
      await o.save("Sub.Child", trickyMessage(7));
    }, 120_000);
    afterAll(async () => {
      await o?.cleanup();
    });

    for (const mailbox of ["INBOX", "Sub.Child"]) {
      it(`${mailbox}: uids, flags, keywords, guids and bytes equal doveadm fetch`, async () => {
        const dir = path.join(o.root, maildirMailboxDir(mailbox));
        const ours = readMaildirMailbox(dir);
        const rows = await o.fetch("uid flags guid", ["mailbox", mailbox, "all"]);
        expect(ours.map((m) => m.uid)).toEqual(rows.map((r) => Number(r.uid)));
        expect(ours.map((m) => m.flags)).toEqual(rows.map((r) => sorted(parseFlags(r.flags))));
        expect(ours.map((m) => m.guid)).toEqual(rows.map((r) => r.guid));
        for (const m of ours) expect(m.bytes.equals(await o.fetchText(mailbox, m.uid)), `uid ${m.uid}`).toBe(true);
        o.assertNoStderrProblems();
      });
    }

    it("names folders as doveadm lists them", async () => {
      const names = new Set(["INBOX"]);
      for (const entry of fs.readdirSync(o.root)) {
        const c = classifyMaildirRootEntry(entry);
        // doveadm also lists the implied parents (\NonExistent "Sub" of "Sub.Child").
        for (let n: string | undefined = c.kind === "mailbox" ? c.name : undefined; n !== undefined; n = maildirParentName(n)) names.add(n);
      }
      expect([...names].sort()).toEqual((await o.mailboxList()).sort());
      expect(fs.existsSync(path.join(o.root, ".Sub.Child", MAILDIR_FOLDER_MARKER))).toBe(true);
    });
  });

  describe("maildir written by us", () => {
    let o: DovecotOracle;
    const uidValidity = 1700000000;
    const guid = "0123456789abcdef0123456789abcdef";
    const written: Array<{ uid: number; flags: number; keywords: string[]; body: Buffer }> = [];
    beforeAll(async () => {
      o = createOracle("maildir");
      for (const d of ["cur", "new", "tmp"]) fs.mkdirSync(path.join(o.root, d));
      const keywords: MaildirKeywords = ["$Label1", "custom-kw", "$Junk"];
      const specs = [
        { uid: 3, flags: MailFlag.SEEN | MailFlag.FLAGGED, keywords: ["$Label1", "$Junk"] },
        { uid: 7, flags: 0, keywords: [] },
        { uid: 8, flags: MailFlag.ANSWERED | MailFlag.DRAFT | MailFlag.DELETED, keywords: ["custom-kw"] },
      ];
      const records = [];
      for (const [i, spec] of specs.entries()) {
        const body = Buffer.from(trickyMessage(i + 1));
        const baseName = newMaildirBaseName({ hostname: "mailstore.test" });
        const kwIdx = spec.keywords.map((k) => maildirKeywordIndex(keywords, k)!);
        const vsize = body.length + body.toString("latin1").split("\n").length - 1;
        const name = formatMaildirFileName({ baseName, size: body.length, vsize, flags: spec.flags, keywordIndexes: kwIdx });
        fs.writeFileSync(path.join(o.root, spec.flags === 0 && kwIdx.length === 0 ? "new" : "cur", name), body);
        records.push({ uid: spec.uid, extensions: [], fileName: `${baseName},S=${body.length},W=${vsize}` });
        written.push({ ...spec, body });
      }
      fs.writeFileSync(path.join(o.root, MAILDIR_KEYWORDS_FILE_NAME), formatMaildirKeywords(keywords));
      fs.writeFileSync(path.join(o.root, MAILDIR_UIDLIST_FILE_NAME), formatUidlist({ header: { version: 3, uidValidity, nextUid: 10, guid, extensions: [] }, records }));
      await o.chownRoot();
    }, 60_000);
    afterAll(async () => {
      await o?.cleanup();
    });

    it("doveadm reads our uids, flags, keywords, bytes and header values", async () => {
      const rows = await o.fetch("uid flags guid", ["mailbox", "INBOX", "all"]);
      expect(rows.map((r) => Number(r.uid))).toEqual(written.map((w) => w.uid));
      expect(rows.map((r) => sorted(parseFlags(r.flags)))).toEqual(written.map((w) => flagList(w.flags, w.keywords)));
      for (const w of written) expect((await o.fetchText("INBOX", w.uid)).equals(w.body)).toBe(true);
      const st = await o.mailboxStatus("messages uidnext uidvalidity guid", "INBOX");
      expect(st).toMatchObject({ messages: "3", uidnext: "10", uidvalidity: String(uidValidity), guid });
      o.assertNoStderrProblems();
    });

    it("Dovecot continues our files and we read its changes", async () => {
      await o.flags("add", "\\Seen another", "mailbox INBOX uid 7");
      await o.save("INBOX", trickyMessage(9));
      const ours = readMaildirMailbox(o.root);
      const rows = await o.fetch("uid flags", ["mailbox", "INBOX", "all"]);
      expect(ours.map((m) => m.uid)).toEqual([3, 7, 8, 10]);
      expect(ours.map((m) => m.flags)).toEqual(rows.map((r) => sorted(parseFlags(r.flags))));
      o.assertNoStderrProblems();
    });
  });

  describe("mbox written by Dovecot", () => {
    let o: DovecotOracle;
    const inbox = () => path.join(o.root, "inbox");
    beforeAll(async () => {
      o = createOracle("mbox");
      for (let i = 1; i <= 6; i++) await o.save("INBOX", trickyMessage(i));
      await o.flags("add", "\\Seen \\Flagged $Label1 foo", "mailbox INBOX uid 1");
      await o.flags("add", "bar \\Draft", "mailbox INBOX uid 3");
      await o.flags("add", "\\Answered \\Deleted $Label1 custom", "mailbox INBOX uid 6");
      await o.expunge("mailbox INBOX uid 2");
      await o.mailboxCreate("Sub/Child");
      await o.copy("Sub/Child", "mailbox INBOX uid 1:3");
    }, 120_000);
    afterAll(async () => {
      await o?.cleanup();
    });

    it("INBOX: uids, flags, keywords and text equal doveadm fetch", async () => {
      const messages = await expectMboxAsDoveadm(o, inbox(), "INBOX");
      // uid 2 had a valid From_ line in its body; uid 6 too: Content-Length kept it whole.
      expect(messages.find((m) => m.uid === 6)?.endFromContentLength).toBe(true);
      const base = parseMbox(fs.readFileSync(inbox())).imapBase;
      const st = await o.mailboxStatus("uidvalidity uidnext", "INBOX");
      expect(base?.uidValidity).toBe(Number(st.uidvalidity));
      expect(base?.uidLast).toBe(Number(st.uidnext) - 1);
      expect(base?.keywords).toEqual(expect.arrayContaining(["$Label1", "foo", "bar", "custom"]));
      o.assertNoStderrProblems();
    });

    it("Sub/Child: a second mbox file reads the same", async () => {
      await expectMboxAsDoveadm(o, path.join(o.root, "mail", "Sub", "Child"), "Sub/Child");
      o.assertNoStderrProblems();
    });

    it("an emptied mbox keeps its pseudo message with X-IMAP", async () => {
      await o.expunge("mailbox Sub/Child all");
      const file = path.join(o.root, "mail", "Sub", "Child");
      const { imapBase, messages } = parseMbox(fs.readFileSync(file));
      expect(messages.map((m) => m.pseudo)).toEqual([true]);
      const st = await o.mailboxStatus("messages uidnext uidvalidity", "Sub/Child");
      expect(st.messages).toBe("0");
      expect(imapBase?.uidLast).toBe(Number(st.uidnext) - 1);
      expect(imapBase?.uidValidity).toBe(Number(st.uidvalidity));
    });
  });

  it("our writer reproduces doveadm saves byte for byte", async () => {
    const o = createOracle("mbox");
    try {
      const inputs = [1, 2, 3, 4, 5].map((i) => trickyMessage(i).replace("\n", "\r\n"));
      for (const m of inputs) await o.save("INBOX", m);
      const data = fs.readFileSync(path.join(o.root, "inbox"));
      const { imapBase, messages } = parseMbox(data);
      const received = await o.fetch("uid date.received.unixtime", ["mailbox", "INBOX", "all"]);
      const ours = formatMbox(
        { uidValidity: imapBase!.uidValidity, uidLast: 5 },
        inputs.map((message, i) => ({
          message,
          uid: i + 1,
          sender: messages[i].sender,
          receivedTime: Number(received[i]["date.received.unixtime"]),
          utcOffsetMinutes: 0,
        })),
      );
      expect(ours.toString("latin1")).toBe(data.toString("latin1"));
    } finally {
      await o.cleanup();
    }
  });

  describe("mbox written by us", () => {
    let o: DovecotOracle;
    const uidValidity = 1600000000;
    const specs = [
      { uid: 4, flags: MailFlag.SEEN, keywords: ["$Label1"], recent: false },
      { uid: 9, flags: MailFlag.ANSWERED | MailFlag.FLAGGED | MailFlag.DRAFT, keywords: ["$Label1", "custom"], recent: true },
      { uid: 10, flags: MailFlag.DELETED | MailFlag.SEEN, keywords: [], recent: false },
      { uid: 15, flags: 0, keywords: ["other"], recent: true },
    ];
    beforeAll(async () => {
      o = createOracle("mbox");
      const data = formatMbox(
        { uidValidity, uidLast: 20, keywords: ["$Label1", "custom", "other"] },
        specs.map((s, i) => ({ ...s, message: trickyMessage(i + 1), sender: "writer@mailstore.test", receivedTime: 1700000000 + i, utcOffsetMinutes: 0 })),
      );
      fs.writeFileSync(path.join(o.root, "inbox"), data);
      await o.chownRoot();
    }, 60_000);
    afterAll(async () => {
      await o?.cleanup();
    });

    it("doveadm reads our uids, flags, keywords, text and X-IMAPbase", async () => {
      const rows = await o.fetch("uid flags date.received.unixtime", ["mailbox", "INBOX", "all"]);
      expect(rows.map((r) => Number(r.uid))).toEqual(specs.map((s) => s.uid));
      expect(rows.map((r) => sorted(parseFlags(r.flags)))).toEqual(specs.map((s) => flagList(s.flags, s.keywords)));
      expect(rows.map((r) => Number(r["date.received.unixtime"]))).toEqual(specs.map((_, i) => 1700000000 + i));
      for (const [i, s] of specs.entries()) {
        const expected = Buffer.from(trickyMessage(i + 1).replace(/([^\n])$/, "$1\n").replace(/\n\n$/, "\n\n\n"));
        expect((await o.fetchText("INBOX", s.uid)).toString(), `uid ${s.uid}`).toBe(expected.toString());
      }
      const st = await o.mailboxStatus("messages uidnext uidvalidity", "INBOX");
      expect(st).toMatchObject({ messages: "4", uidnext: "21", uidvalidity: String(uidValidity) });
      o.assertNoStderrProblems();
    });

    it("Dovecot appends to our mbox and we read the result", async () => {
      await o.flags("add", "\\Flagged newkw", "mailbox INBOX uid 10");
      await o.save("INBOX", trickyMessage(8));
      await expectMboxAsDoveadm(o, path.join(o.root, "inbox"), "INBOX");
      const last = parseMbox(fs.readFileSync(path.join(o.root, "inbox"))).messages.at(-1);
      expect(last?.uid).toBe(21);
      o.assertNoStderrProblems();
    });

    it("a message appended outside Dovecot keeps flags and known keywords but gets Dovecot's next UID", async () => {
      // Observed: once an index exists, Dovecot renumbers externally appended
      // messages (X-UID >= next UID silently, a lower one with "Expunged
      // message reappeared"), and a keyword the mailbox does not know makes
      // it ignore the message's X-Keywords. Only the first sync of a file
      // takes X-UIDs as they are.
      const file = path.join(o.root, "inbox");
      const before = parseMbox(fs.readFileSync(file)).messages.at(-1)!;
      const { uidnext } = await o.mailboxStatus("uidnext", "INBOX");
      const msg = formatMboxMessage({ message: trickyMessage(2), uid: before.uid + 5, flags: MailFlag.SEEN, keywords: ["custom"], sender: "x@y", receivedTime: 1700001000, utcOffsetMinutes: 0 });
      fs.appendFileSync(file, msg);
      await o.chownRoot();
      const rows = await o.fetch("uid flags", `mailbox INBOX uid ${uidnext}`);
      expect(rows.map((r) => [Number(r.uid), sorted(parseFlags(r.flags))])).toEqual([[Number(uidnext), ["\\Seen", "custom"]]]);
      await expectMboxAsDoveadm(o, file, "INBOX");
      o.assertNoStderrProblems();
    });
  });

  describe("mail_location resolution matches doveadm -D", () => {
    let o: DovecotOracle;
    beforeAll(async () => {
      o = createOracle("maildir");
      await o.save("INBOX", sampleMessage(1)); // <root> is now a Maildir
      fs.mkdirSync(path.join(o.dir, "mboxroot", ".imap"), { recursive: true });
      fs.mkdirSync(path.join(o.dir, "Maildir", "cur"), { recursive: true }); // ~/Maildir (HOME is o.dir)
      // doveadm runs as 65534 and wants rwx on .imap/ and ~/Maildir.
      for (const p of ["mboxroot", "mboxroot/.imap", "Maildir", "Maildir/cur"]) fs.chownSync(path.join(o.dir, p), 65534, 65534);
    }, 60_000);
    afterAll(async () => {
      await o?.cleanup();
    });

    /** root and inbox of the mailbox list doveadm set up for `location`. */
    async function doveadmPaths(location: string): Promise<{ root: string; inbox: string }> {
      const r = await o.run(["-D", "mailbox", "list"], { noLocation: true, extraSettings: { mail_location: location }, allowFailure: true });
      const m = /: root=([^,]*), index=[^,]*, indexpvt=[^,]*, control=[^,]*, inbox=([^,]*),/.exec(r.stderr);
      if (!m) throw new Error(`no root in doveadm -D output:\n${r.stderr}`);
      return { root: m[1], inbox: m[2] };
    }

    for (const [label, location] of [
      ["a bare Maildir path", () => o.root],
      ["a Maildir path with a trailing slash and settings", () => `${o.root}/:INDEX=${o.dir}/idx`],
      ["a bare mbox directory with .imap/", () => path.join(o.dir, "mboxroot")],
      ["an explicit mbox location without INBOX=", () => `mbox:${path.join(o.dir, "mboxroot")}`],
      ["an empty mail_location (~/Maildir)", () => ""],
    ] as const) {
      it(label, async () => {
        const loc = location();
        const ours = resolveMailLocation(loc, { home: o.dir, user: "oracle" });
        const theirs = await doveadmPaths(loc);
        expect(ours.root).toBe(theirs.root);
        expect(ours.inbox ?? ours.root).toBe(theirs.inbox);
      });
    }
  });
});
