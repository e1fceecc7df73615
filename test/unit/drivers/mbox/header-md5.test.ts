import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { mboxHeaderMd5, md5Hex } from "../../../../src/drivers/mbox/header-md5.js";
import { splitHeaderFields } from "../../../../src/drivers/mbox/header-fields.js";

const hex = (s: string) => md5Hex(mboxHeaderMd5(Buffer.from(s, "latin1")));

describe("mboxHeaderMd5 (GUIDs doveadm 2.3.19 printed for these headers)", () => {
  it("hashes the first Received (all lines), then ignores Date and Message-ID", () => {
    expect(hex("Received: from a\n  by b\nReceived: from c\nDate: Mon, 1 Jan 2024\nMessage-ID: <x@y>\nDelivered-To: u@v\nSubject: md5\n")).toBe("1d3a145c71a841aee54ccb4536f7a8af");
  });
  it("skips exactly one blank after the colon", () => {
    expect(hex("Date:   Tue, 2 Jan 2024\nMessage-ID:<q@r>\nSubject: md5b\n")).toBe("04cd598c0710cb136f57d4f468a4f74c");
  });
  it("is the MD5 of nothing without identifying headers, and ignores Dovecot's own", () => {
    expect(hex("From: a@b\nSubject: one\nX-UID: 1\nStatus: RO\n")).toBe("d41d8cd98f00b204e9800998ecf8427e");
  });
});

describe("splitHeaderFields", () => {
  it("covers the block: continuations, CRLF, lines without a colon", () => {
    const block = Buffer.from("A: 1\r\n  2\nFrom x\nB :  v\n");
    const f = splitHeaderFields(block);
    expect(f.map((x) => x.name)).toEqual(["A", "From x", "B"]);
    expect(f.map((x) => [x.start, x.end])).toEqual([[0, 10], [10, 17], [17, 24]]);
    expect(f[0].values.map(([s, e]) => block.subarray(s, e).toString())).toEqual(["1", "  2"]);
    expect(f[2].values.map(([s, e]) => block.subarray(s, e).toString())).toEqual([" v"]);
  });
});

describe("mboxHeaderMd5 reads only the names that may be hashed", () => {
  // The rules applied to splitHeaderFields' whole fields, the way the hash was first written.
  const reference = (block: Buffer): string => {
    const parts: Buffer[] = [];
    let seenReceived = false;
    for (const field of splitHeaderFields(block)) {
      const name = field.name.toLowerCase();
      const hash = name === "delivered-to" || name === "x-delivery-id" || (["date", "message-id", "received"].includes(name) && !seenReceived);
      if (hash) for (const [s, e] of field.values) parts.push(block.subarray(s, e));
      if (name === "received") seenReceived = true;
    }
    return md5Hex(new Uint8Array(createHash("md5").update(Buffer.concat(parts)).digest()));
  };
  it.each([
    " Date: leading blank\nDATE : x\n\tcont\nmessage-ID:<a>\r\nReceived\n by z\nDate: after\nX-Delivery-ID: 7\n",
    "Received: one\nReceived: two\nDelivered-To: a\n  b\nMessage-Id: <m>\n",
    "Subject: s\nX-UID: 3\nDelivered-To:\nDate:",
    "",
  ])("as the rules say for %j", (text) => {
    const block = Buffer.from(text, "latin1");
    expect(md5Hex(mboxHeaderMd5(block))).toBe(reference(block));
  });
});
