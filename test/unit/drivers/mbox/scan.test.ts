import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parseMbox, scanMbox } from "../../../../src/drivers/mbox/scan.js";
import type { MboxMessage } from "../../../../src/drivers/mbox/scan.js";
import { bufferSource, FileSource } from "../../../../src/drivers/mbox/source.js";
import { mboxMessageBody, mboxMessageText } from "../../../../src/drivers/mbox/text.js";
import { MailCorruptedError } from "../../../../src/shared/errors.js";
import { MailFlag } from "../../../../src/log/types.js";

const { ANSWERED, FLAGGED, SEEN, DRAFT } = MailFlag;

// Written by doveadm 2.3.19: 4 saves, flags add, expunge of uid 2.
const DOVECOT_MBOX =
  "From oracle@vm  Mon Nov 23 09:40:07 2026\nFrom: a@b\nSubject: x\nX-IMAPbase: 1795426807 0000000004 $Label1 foo bar\nX-UID: 1\nStatus: R\nX-Keywords: $Label1 foo                               \nContent-Length: 33\nX-Status: F\n\nFrom the start\n>From quoted\nbody\n\n" +
  "From oracle@vm  Mon Nov 23 09:40:07 2026\nSubject: z\nX-UID: 3\nStatus: \nX-Keywords: bar                                                       \nContent-Length: 20\nX-Status: AT\n\nno trailing newline\n\n" +
  "From oracle@vm  Mon Nov 23 09:40:07 2026\nSubject: empty\nX-UID: 4\nStatus: \nX-Keywords:                                                                         \nContent-Length: 1\n\n\n\n";

// The pseudo message Dovecot writes into an emptied mbox, then one save.
const PSEUDO_MBOX =
  "From MAILER_DAEMON  Mon Nov 23 09:41:03 2026\nDate: Mon, 23 Nov 2026 09:41:03 +0000\nFrom: Mail System Internal Data <MAILER-DAEMON@vm>\nSubject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\nMessage-ID: <1795426863@vm>\nX-IMAP: 1795426836 0000000003 $Label1 foo bar                            \nStatus: RO\n\nThis text is part of the internal format of your mail folder, and is not\na real message.  It is created automatically by the mail system software.\nIf deleted, important folder data will be lost, and it will be re-created\nwith the data reset to initial values.\n\n" +
  "From oracle@vm  Mon Nov 23 09:41:03 2026\nSubject: after\nX-UID: 3\nStatus: \nX-Keywords:                             \nContent-Length: 2\n\nx\n\n";

// A body line that is a valid From_ line, protected by Content-Length.
const FROM_IN_BODY =
  "From oracle@vm  Mon Nov 23 09:44:41 2026\nFrom: a@b\nX-Foo: bar\nFrom hdr line\nX-IMAPbase: 1795427081 0000000002\nX-UID: 1\nStatus: \nX-Keywords:                                                                        \nContent-Length: 43\n\nbody\nline2\nFrom x Thu Nov 29 22:33:52 2001\n\n" +
  "From oracle@vm  Mon Nov 23 09:44:47 2026\nFrom: a@b\nX-Bar: 1\n continued\nX-CR: a\rb\nX-UID: 2\nStatus: \nX-Keywords:                                                                         \nContent-Length: 5\n\nbody\n\n";

const bytes = (s: string) => Buffer.from(s, "latin1");
const text = (data: Buffer, m: MboxMessage) => Buffer.from(mboxMessageText(bufferSource(data), m)).toString("latin1");
const body = (data: Buffer, m: MboxMessage) => Buffer.from(mboxMessageBody(bufferSource(data), m)).toString("latin1");

describe("scanMbox on files Dovecot wrote", () => {
  it("reads uids, flags, keywords, X-IMAPbase and exact byte ranges", () => {
    const data = bytes(DOVECOT_MBOX);
    const { imapBase, messages } = parseMbox(data);
    expect(imapBase).toEqual({ uidValidity: 1795426807, uidLast: 4, keywords: ["$Label1", "foo", "bar"] });
    expect(messages.map((m) => m.uid)).toEqual([1, 3, 4]);
    expect(messages.map((m) => m.flags)).toEqual([SEEN | FLAGGED, ANSWERED | DRAFT, 0]);
    expect(messages.map((m) => m.keywords)).toEqual([["$Label1", "foo"], ["bar"], []]);
    expect(messages.every((m) => m.uidFromHeader && m.recent && !m.pseudo && !m.endFromContentLength)).toBe(true);
    expect(messages.map((m) => m.contentLength)).toEqual([33, 20, 1]);
    expect(body(data, messages[0])).toBe("From the start\n>From quoted\nbody\n");
    expect(text(data, messages[0])).toBe("From: a@b\nSubject: x\n\nFrom the start\n>From quoted\nbody\n");
    expect(text(data, messages[2])).toBe("Subject: empty\n\n\n");
    // from offsets: 0, then the separator LF before each From_ line
    expect(messages[0].fromOffset).toBe(0);
    expect(data[messages[1].fromOffset]).toBe(0x0a);
    expect(messages[1].fromLineOffset).toBe(messages[1].fromOffset + 1);
    expect(messages[1].fromOffset).toBe(messages[0].endOffset);
    expect(messages[2].endOffset).toBe(data.length - 1);
    expect(messages[0].sender).toBe("oracle@vm");
    expect(messages[0].receivedTime).toBe(new Date(2026, 10, 23, 9, 40, 7).getTime() / 1000);
  });

  it("hides the pseudo message's X-IMAP data and keeps UIDs", () => {
    const { imapBase, messages } = parseMbox(bytes(PSEUDO_MBOX));
    expect(imapBase).toEqual({ uidValidity: 1795426836, uidLast: 3, keywords: ["$Label1", "foo", "bar"] });
    expect(messages.map((m) => [m.pseudo, m.uid, m.recent])).toEqual([
      [true, 0, false],
      [false, 3, true],
    ]);
  });

  it("trusts Content-Length over a From_ line in the body", () => {
    const data = bytes(FROM_IN_BODY);
    const { messages } = parseMbox(data);
    expect(messages.map((m) => m.uid)).toEqual([1, 2]);
    expect(messages[0].endFromContentLength).toBe(true);
    expect(body(data, messages[0])).toBe("body\nline2\nFrom x Thu Nov 29 22:33:52 2001\n");
    expect(text(data, messages[0])).toBe("From: a@b\nX-Foo: bar\nFrom hdr line\n\nbody\nline2\nFrom x Thu Nov 29 22:33:52 2001\n");
    expect(text(data, messages[1])).toBe("From: a@b\nX-Bar: 1\n continued\nX-CR: a\rb\n\nbody\n");
  });

  it("splits at the From_ line when Content-Length is missing or wrong", () => {
    for (const cl of ["", "Content-Length: 40\n", "Content-Length: 9999\n", "Content-Length: 4x\n"]) {
      const data = bytes(FROM_IN_BODY.replace("Content-Length: 43\n", cl));
      const { messages } = parseMbox(data);
      expect(messages.length, cl).toBe(3);
      expect(body(data, messages[0])).toBe("body\nline2");
      expect(messages[1].sender).toBe("x");
      // The split-off message has no X-UID and gets the next UID (3, after
      // X-IMAPbase's 2), as Dovecot's sync would; then X-UID 2 is no longer
      // above the previous UID and is ignored too.
      expect(messages.map((m) => [m.uid, m.uidFromHeader])).toEqual([
        [1, true],
        [3, false],
        [4, false],
      ]);
    }
  });

  it("ignores a broken or out-of-order X-UID and a late X-IMAPbase", () => {
    const mbox =
      "From a  Mon Nov 23 09:40:07 2026\nX-UID: 5\n\nA\n\n" +
      "From a  Mon Nov 23 09:40:07 2026\nX-IMAPbase: 9 0000000100\nX-UID: 4\n\nB\n\n" +
      "From a  Mon Nov 23 09:40:07 2026\nX-UID: 7x\n\nC\n\n" +
      "From a  Mon Nov 23 09:40:07 2026\nX-UID: 9\nX-UID: 12\n\nD\n";
    const { imapBase, messages } = parseMbox(bytes(mbox));
    expect(imapBase).toBeUndefined();
    expect(messages.map((m) => [m.uid, m.uidFromHeader])).toEqual([
      [5, true],
      [6, false],
      [7, false],
      [9, true],
    ]);
  });

  it("handles CRLF separators and an empty header", () => {
    const mbox = "From a  Mon Nov 23 09:40:07 2026\r\nSubject: x\r\n\r\nbody\r\n\r\nFrom b  Mon Nov 23 09:40:07 2026\r\n\r\nb2\r\n";
    const data = bytes(mbox);
    const { messages } = parseMbox(data);
    expect(messages.length).toBe(2);
    expect(body(data, messages[0])).toBe("body\r\n");
    expect(messages[0].crlfSeparator).toBe(true);
    expect(data[messages[1].fromOffset]).toBe(0x0d);
    expect(messages[1].headerEndOffset).toBe(messages[1].headerOffset);
    expect(body(data, messages[1])).toBe("b2");
    expect(messages[1].crlfSeparator).toBe(true);
  });

  it("ends the header at the separator when the boundary comes first", () => {
    const data = bytes("From a  Mon Nov 23 09:40:07 2026\nSubject: x\n\nFrom b  Mon Nov 23 09:40:07 2026\nS: y\nFrom c  Mon Nov 23 09:40:07 2026\n\nz\n");
    const { messages } = parseMbox(data);
    expect(messages.length).toBe(3);
    expect(text(data, messages[0])).toBe("Subject: x\n");
    expect(messages[0].bodyOffset).toBe(messages[0].endOffset);
    expect(text(data, messages[1])).toBe("S: y");
    expect(body(data, messages[2])).toBe("z");
  });

  it("drops a message's keywords when one is not in the X-IMAPbase list (observed)", () => {
    const mbox =
      "From a  Mon Nov 23 09:40:07 2026\nX-IMAPbase: 5 0000000020 a b\nX-UID: 4\nX-Keywords: a b\n\nA\n\n" +
      "From a  Mon Nov 23 09:40:07 2026\nX-UID: 5\nX-Keywords: a c\n\nB\n";
    const { messages } = parseMbox(bytes(mbox));
    expect(messages.map((m) => [m.keywords, m.unknownKeywords])).toEqual([
      [["a", "b"], []],
      [[], ["c"]],
    ]);
    const noBase = parseMbox(bytes("From a  Mon Nov 23 09:40:07 2026\nX-Keywords: a\n\nA\n")).messages[0];
    expect(noBase.keywords).toEqual([]);
  });

  it("reads an empty file as an empty mbox", () => {
    expect(parseMbox(new Uint8Array(0)).messages).toEqual([]);
  });

  it("throws MailCorruptedError for a file that does not begin with a From_ line", () => {
    for (const bad of ["\n", "Subject: x\n\nbody\n", "From the start\n", "From a  Mon Nov 23 09:40:07 2026"]) {
      expect(() => parseMbox(bytes(bad), { path: "/m/inbox" }), JSON.stringify(bad)).toThrow(MailCorruptedError);
    }
    try {
      parseMbox(bytes("garbage"), { path: "/m/inbox" });
    } catch (e) {
      expect(e).toMatchObject({ code: "MAIL_CORRUPTED", path: "/m/inbox", offset: 0 });
    }
  });

  it("bounds what it keeps of Dovecot's headers", () => {
    const huge = "From a  Mon Nov 23 09:40:07 2026\nS: 1\nX-Keywords: " + "k ".repeat(5000) + "\n\nb\n";
    expect(() => parseMbox(bytes(huge), { maxMetadataValueBytes: 1000, path: "p" })).toThrow(MailCorruptedError);
    try {
      parseMbox(bytes(huge), { maxMetadataValueBytes: 1000, path: "p" });
    } catch (e) {
      expect((e as MailCorruptedError).offset).toBe(38);
    }
    // an ordinary header of any length costs nothing
    const longOther = "From a  Mon Nov 23 09:40:07 2026\nX-Big: " + "x".repeat(300_000) + "\nX-UID: 3\n\nb\n";
    expect(parseMbox(bytes(longOther), { maxMetadataValueBytes: 1000 }).messages[0].uid).toBe(3);
  });

  it("reads a file through a small window exactly as from memory", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mbox-scan-"));
    try {
      const all = DOVECOT_MBOX + PSEUDO_MBOX.replace(/X-IMAP: .*\n/, "") + FROM_IN_BODY.replace(/X-IMAPbase: .*\n/, "");
      const file = path.join(dir, "inbox");
      fs.writeFileSync(file, all, "latin1");
      const fd = fs.openSync(file, "r");
      try {
        const streamed = [...scanMbox(new FileSource(fd, 64), { maxFromLineBytes: 48 })];
        const inMemory = parseMbox(bytes(all)).messages;
        expect(streamed).toEqual(inMemory);
        expect(streamed.length).toBe(7);
        const fileSrc = new FileSource(fd, 64);
        for (const m of streamed) {
          expect(Buffer.from(mboxMessageText(fileSrc, m)).toString("latin1")).toBe(text(bytes(all), m));
        }
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
