import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseMbox } from "../../../../src/drivers/mbox/scan.js";
import { bufferSource } from "../../../../src/drivers/mbox/source.js";
import { mboxMessageText } from "../../../../src/drivers/mbox/text.js";
import { formatMbox, formatMboxMessage, MBOX_KEYWORDS_PADDING } from "../../../../src/drivers/mbox/write.js";
import { InvalidArgumentError } from "../../../../src/shared/errors.js";
import { MailFlag } from "../../../../src/log/types.js";

const utc = (y: number, mo: number, d: number, h: number, mi: number, s: number) => Date.UTC(y, mo, d, h, mi, s) / 1000;

describe("formatMboxMessage", () => {
  it("reproduces two doveadm saves byte for byte (header filtering, CRLF, missing LF, From_ in body)", () => {
    // doveadm 2.3.19 save of these two inputs (TZ=UTC), after its sync set X-IMAPbase's last UID to 2:
    const expected =
      "From oracle@vm  Mon Nov 23 09:44:41 2026\nFrom: a@b\nX-Foo: bar\nFrom hdr line\nX-IMAPbase: 1795427081 0000000002\nX-UID: 1\nStatus: \nX-Keywords:                                                                        \nContent-Length: 43\n\nbody\nline2\nFrom x Thu Nov 29 22:33:52 2001\n\n" +
      "From oracle@vm  Mon Nov 23 09:44:47 2026\nFrom: a@b\nX-Bar: 1\n continued\nX-CR: a\rb\nX-UID: 2\nStatus: \nX-Keywords:                                                                         \nContent-Length: 5\n\nbody\n\n";
    const out = formatMbox({ uidValidity: 1795427081, uidLast: 2 }, [
      {
        message: "From: a@b\nX-Delivery-ID: abc\nX-IMAP: 1 2\nX-Foo: bar\nFrom hdr line\nStatus: RO\nX-Keywords: zz\n\nbody\r\nline2\r\nFrom x Thu Nov 29 22:33:52 2001\n",
        uid: 1,
        sender: "oracle@vm",
        receivedTime: utc(2026, 10, 23, 9, 44, 41),
        utcOffsetMinutes: 0,
      },
      {
        message: "From x Thu Nov 29 22:33:52 2001\nFrom: a@b\nFrom y: z\nX-Bar: 1\r\n continued\r\nX-CR: a\rb\n\nbody",
        uid: 2,
        sender: "oracle@vm",
        receivedTime: utc(2026, 10, 23, 9, 44, 47),
        utcOffsetMinutes: 0,
      },
    ]);
    expect(out.toString("latin1")).toBe(expected);
  });

  it("writes flags and keywords in Dovecot's order with the keyword padding", () => {
    const out = formatMboxMessage({
      message: "Subject: z\n\nno trailing newline",
      uid: 2,
      flags: MailFlag.DRAFT | MailFlag.ANSWERED | MailFlag.SEEN | MailFlag.DELETED | MailFlag.FLAGGED,
      keywords: ["bar"],
      recent: false,
      sender: "",
      receivedTime: utc(2026, 10, 23, 9, 38, 50),
      utcOffsetMinutes: 0,
    }).toString("latin1");
    expect(out).toBe(
      "From MAILER-DAEMON  Mon Nov 23 09:38:50 2026\nSubject: z\nX-UID: 2\nStatus: RO\nX-Status: AFTD\nX-Keywords: bar" +
        " ".repeat(72) +
        "\nContent-Length: 20\n\nno trailing newline\n\n",
    );
    expect(MBOX_KEYWORDS_PADDING).toBe(91);
  });

  it("gives an empty body one LF and a header-only message its empty line", () => {
    const out = formatMboxMessage({ message: "Subject: empty\n\n", uid: 4, sender: "s", receivedTime: 0, utcOffsetMinutes: 0 }).toString();
    expect(out.endsWith("\nContent-Length: 1\n\n\n\n")).toBe(true);
    const noEoh = formatMboxMessage({ message: "Subject: only", uid: 1, sender: "s", receivedTime: 0, utcOffsetMinutes: 0 }).toString();
    expect(noEoh).toContain("Subject: only\nX-UID: 1\n");
  });

  it("rejects what cannot be stored", () => {
    const base = { message: "S: x\n\nb\n", sender: "s", receivedTime: 0 };
    expect(() => formatMboxMessage({ ...base, uid: 0 })).toThrow(InvalidArgumentError);
    expect(() => formatMboxMessage({ ...base, uid: 1, keywords: ["a b"] })).toThrow(InvalidArgumentError);
    expect(() => formatMbox({ uidValidity: 1 }, [{ ...base, uid: 2 }, { ...base, uid: 2 }])).toThrow(InvalidArgumentError);
  });

  it("is read back by the scanner with the same uids, flags, keywords and text", () => {
    const keyword = fc.stringMatching(/^[$A-Za-z0-9_]{1,8}$/);
    const line = fc.constantFrom("From the start", ">From quoted", "From x  Mon Nov 23 09:40:07 2026", "", "text", "From:", "\r");
    const msg = fc.record({
      flags: fc.integer({ min: 0, max: 0x1f }),
      keywords: fc.uniqueArray(keyword, { maxLength: 3 }),
      recent: fc.boolean(),
      bodyLines: fc.array(line, { maxLength: 6 }),
    });
    fc.assert(
      fc.property(fc.array(msg, { minLength: 1, maxLength: 5 }), fc.integer({ min: 1, max: 0xffffffff }), (msgs, uidValidity) => {
        const inputs = msgs.map((m, i) => ({
          message: `Subject: m${i}\n\n${m.bodyLines.join("\n")}`,
          uid: i * 2 + 1,
          flags: m.flags,
          keywords: m.keywords,
          recent: m.recent,
          sender: "a@b",
          receivedTime: utc(2026, 0, 1, 0, 0, 0),
        }));
        const data = formatMbox({ uidValidity, keywords: ["$Label1"] }, inputs);
        const parsed = parseMbox(data);
        const used = [...new Set(msgs.flatMap((m) => m.keywords))].filter((k) => k !== "$Label1");
        expect(parsed.imapBase).toEqual({ uidValidity, uidLast: 1, keywords: ["$Label1", ...used] });
        expect(parsed.messages.map((m) => [m.uid, m.flags, m.keywords, m.recent])).toEqual(inputs.map((m) => [m.uid, m.flags, m.keywords, m.recent]));
        parsed.messages.forEach((m, i) => {
          const body = msgs[i].bodyLines.join("\n").replaceAll("\r\n", "\n");
          const expectedText = `Subject: m${i}\n\n${body.endsWith("\n") ? body : body + "\n"}`;
          expect(Buffer.from(mboxMessageText(bufferSource(data), m)).toString()).toBe(expectedText);
        });
      }),
    );
  });
});
