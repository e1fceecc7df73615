import { describe, expect, it } from "vitest";
import { MessageCursor, messageAt } from "../../../../src/drivers/mbox/file-messages.js";
import { parseMbox } from "../../../../src/drivers/mbox/scan.js";
import { bufferSource } from "../../../../src/drivers/mbox/source.js";

// The second message ends at a Content-Length past a body line that is a valid From_ line.
const MBOX = Buffer.from(
  "From a@b  Mon Nov 23 09:40:07 2026\nSubject: one\n\nbody 1\n\n" +
    "From a@b  Mon Nov 23 09:40:08 2026\nSubject: two\nContent-Length: 36\n\nFrom x Thu Nov 29 22:33:52 2001\nend\n\n" +
    "From a@b  Mon Nov 23 09:40:09 2026\nSubject: three\n\nbody 3\n",
  "latin1",
);
const offsets = parseMbox(MBOX).messages.map((m) => m.fromOffset);

describe("MessageCursor", () => {
  it("reads message after message as messageAt does (uid aside)", () => {
    const src = bufferSource(MBOX);
    const cursor = new MessageCursor(src, "mbox");
    expect(parseMbox(MBOX).messages.map((m) => m.endFromContentLength)).toEqual([false, true, false]);
    for (const offset of offsets) {
      const { uid: _a, uidFromHeader: _b, ...got } = cursor.at(offset)!;
      const { uid: _c, uidFromHeader: _d, ...want } = messageAt(src, offset, "mbox")!;
      expect(got).toEqual(want);
    }
  });

  it("starts over at an offset that does not follow, and answers undefined where no From_ line is", () => {
    const cursor = new MessageCursor(bufferSource(MBOX), "mbox");
    expect(cursor.at(offsets[2])?.fromOffset).toBe(offsets[2]);
    expect(cursor.at(offsets[0])?.fromOffset).toBe(offsets[0]);
    expect(cursor.at(offsets[1] + 3)).toBeUndefined();
    expect(cursor.at(MBOX.length + 10)).toBeUndefined();
    expect(cursor.at(offsets[1])?.fromOffset).toBe(offsets[1]);
    // After the last message the scan has ended: a new one finds nothing past the file.
    expect(cursor.at(offsets[2])?.fromOffset).toBe(offsets[2]);
    expect(cursor.at(MBOX.length - 1)).toBeUndefined();
  });
});
