/**
 * What a first sync of a big mbox holds per message (issue #11, goal 5a: a
 * first import from an mbox without an index peaked at 335-350 MiB RSS at
 * 100k messages): the scan's messages without keywords share one empty
 * list, and the from-offset records share one buffer, each record's data
 * still its own 8 little-endian bytes.
 */
import { expect, it } from "vitest";
import { scanMbox } from "../../../../src/drivers/mbox/scan.js";
import { bufferSource } from "../../../../src/drivers/mbox/source.js";
import { fromOffsetRecords } from "../../../../src/drivers/mbox/index-ext.js";

it("messages without X-Keywords share their empty keyword lists; one with keywords keeps its own", () => {
  const mbox =
    "From a@b  Mon Nov 23 09:40:07 2026\nSubject: 1\n\none\n\n" +
    "From a@b  Mon Nov 23 09:40:08 2026\nSubject: 2\n\ntwo\n\n" +
    "From a@b  Mon Nov 23 09:40:09 2026\nSubject: 3\nX-Keywords: foo\n\nthree\n\n";
  const [m1, m2, m3] = [...scanMbox(bufferSource(Buffer.from(mbox, "latin1")))];
  for (const m of [m1, m2]) {
    expect(m.keywords).toEqual([]);
    expect(m.keywords).toBe(m1.keywords);
    expect(m.rawKeywords).toBe(m1.keywords);
    expect(m.unknownKeywords).toBe(m1.keywords);
  }
  // No X-IMAPbase: foo is unknown, so Dovecot ignores the header's keywords.
  expect(m3.rawKeywords).toEqual(["foo"]);
  expect(m3.unknownKeywords).toEqual(["foo"]);
  expect(m3.keywords).toEqual([]);
});

it("from-offset records share one buffer, each update its offset's 8 little-endian bytes, in UID order", () => {
  const records = fromOffsetRecords([{ uid: 3, offset: 2 ** 33 + 5 }, { uid: 1, offset: 0 }, { uid: 2, offset: 4097 }]);
  const rec = records.find((r) => r.type === "ext-rec");
  if (rec?.type !== "ext-rec") throw new Error("no ext-rec record");
  expect(rec.updates.map((u) => u.uid)).toEqual([1, 2, 3]);
  expect(rec.updates.map((u) => Buffer.from(u.data).readBigUInt64LE(0))).toEqual([0n, 4097n, 2n ** 33n + 5n]);
  expect(rec.updates.every((u) => u.data.length === 8 && u.data.buffer === rec.updates[0].data.buffer)).toBe(true);
});
