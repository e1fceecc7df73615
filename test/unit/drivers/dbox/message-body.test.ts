import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { toLfLineEndings, virtualSizeOf } from "../../../../src/drivers/dbox/message-body.js";
import { decodeSdboxFile } from "../../../../src/drivers/dbox/file-format.js";
import { readDboxMetadata } from "../../../../src/drivers/dbox/metadata.js";
import { SDBOX_U1 } from "./fixtures.js";

const latin1 = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));
const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");

describe("message body", () => {
  it("stores CRLF as LF and keeps lone CRs", () => {
    expect(text(toLfLineEndings(latin1("a\r\nb\rc\n\r\n")))).toBe("a\nb\rc\n\n");
    const lf = latin1("a\nb\n");
    expect(toLfLineEndings(lf)).toBe(lf);
  });

  it("virtual size counts bare LFs twice, as Dovecot's V", () => {
    expect(virtualSizeOf(latin1("a\nb\r\n"))).toBe(6);
    const { message } = decodeSdboxFile(SDBOX_U1);
    expect(virtualSizeOf(message.body)).toBe(readDboxMetadata(message.metadata).virtualSize);
  });

  it("virtual size is invariant under LF normalization (text without lone CRs)", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom("a", "\n", "\r\n", "xyz")), (parts) => {
        const bytes = latin1(parts.join(""));
        // Only CRLF pairs are merged, so the CRLF-size of the text stays the same.
        expect(virtualSizeOf(toLfLineEndings(bytes))).toBe(virtualSizeOf(bytes));
      }),
    );
  });

  it("virtual size and LF conversion agree with a byte-by-byte count, lone CRs and line ends at either edge included", () => {
    const byteByByte = (b: Uint8Array) => b.reduce((n, c, i) => n + (c === 0x0a && (i === 0 || b[i - 1] !== 0x0d) ? 2 : 1), 0);
    expect(virtualSizeOf(latin1("\nx\n"))).toBe(5);
    fc.assert(
      fc.property(fc.array(fc.constantFrom("a", "\n", "\r", "\r\n", "xyz")), (parts) => {
        const bytes = latin1(parts.join(""));
        expect(virtualSizeOf(bytes)).toBe(byteByByte(bytes));
        expect(text(toLfLineEndings(bytes))).toBe(parts.join("").replaceAll("\r\n", "\n"));
      }),
    );
  });
});
