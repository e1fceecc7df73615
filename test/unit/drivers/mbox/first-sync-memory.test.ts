/**
 * What a first sync of a big mbox holds per message (issue #11, goal 5a: a
 * first import from an mbox without an index peaked at 335-350 MiB RSS at
 * 100k messages): the scan's messages without keywords share one empty
 * list, and the from-offset records share one buffer, each record's data
 * still its own 8 little-endian bytes.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { scanMbox } from "../../../../src/drivers/mbox/scan.js";
import { bufferSource, FileSource, FILE_SOURCE_WINDOW_BYTES } from "../../../../src/drivers/mbox/source.js";
import { fromOffsetRecords } from "../../../../src/drivers/mbox/index-ext.js";
import { scanFile } from "../../../../src/drivers/mbox/file-messages.js";
import { openMboxFile, releaseMboxFile } from "../../../../src/drivers/mbox/mbox-file.js";
import { fullSync, stampedHeader } from "../../../../src/drivers/mbox/sync.js";
import { planSync } from "../../../../src/drivers/mbox/sync-plan.js";
import { syncRecords } from "../../../../src/drivers/mbox/sync-records.js";
import type { LogRecord } from "../../../../src/log/types.js";
import { emptyIndexMap } from "../../../../src/projections/state.js";
import { extRecEntries } from "../../../helpers/ext-rec-entries.js";

/** Bytes the mbox code read from files (FileSource reads through readFullyAt). */
const reads = vi.hoisted(() => ({ bytes: 0 }));
vi.mock("../../../../src/shared/read-at.js", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../../../src/shared/read-at.js")>();
  return {
    ...real,
    readFullyAt: (...args: Parameters<typeof real.readFullyAt>) => {
      const got = real.readFullyAt(...args);
      reads.bytes += got;
      return got;
    },
  };
});

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

it("from-offset records are packed in one buffer as the record holds them, in UID order", () => {
  const records = fromOffsetRecords([{ uid: 3, offset: 2 ** 33 + 5 }, { uid: 1, offset: 0 }, { uid: 2, offset: 4097 }]);
  const rec = records.find((r) => r.type === "ext-rec");
  if (rec?.type !== "ext-rec") throw new Error("no ext-rec record");
  // No object or view per entry: {uid u32, offset u64} each, in one buffer of exactly 3 entries.
  expect(rec.updates).toEqual([]);
  expect(rec.packed?.bytes.byteLength).toBe(3 * 12);
  const entries = extRecEntries(rec);
  expect(entries.map((u) => u.uid)).toEqual([1, 2, 3]);
  expect(entries.map((u) => Buffer.from(u.data).readBigUInt64LE(0))).toEqual([0n, 4097n, 2n ** 33n + 5n]);
});

describe("the first sync of an mbox the index has no message of", () => {
  let dir: string;
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const COUNT = 60;
  /**
   * X-IMAPbase with one keyword; messages with and without a usable X-UID, a known and an unknown keyword, read and unread;
   * ~2 KiB each, so that the file is larger than FileSource's 64 KiB window.
   */
  function writeMbox(file: string): void {
    let text = "";
    for (let i = 1; i <= COUNT; i++) {
      text += `From a${i}@b  Mon Nov 23 09:40:${String(i % 60).padStart(2, "0")} 2026\n`;
      if (i === 1) text += "X-IMAPbase: 1700000000 0 foo\n";
      if (i % 3 === 0) text += `X-UID: ${i}\n`;
      if (i % 7 === 0) text += "X-Keywords: foo\n";
      if (i === 11) text += "X-Keywords: bar\n";
      if (i % 2 === 0) text += "Status: RO\n";
      text += `Subject: ${i}\nMessage-ID: <m${i}@x>\n\nbody ${i}\n${`${"x".repeat(99)}\n`.repeat(20)}\n`;
    }
    fs.writeFileSync(file, text);
  }

  /** The records with their ext-rec entries as objects and the `mbox` header's GUID and stamps left out. */
  function comparable(records: readonly LogRecord[]): unknown[] {
    return records.map((r) => (r.type === "ext-rec" ? { ...r, packed: undefined, updates: extRecEntries(r) } : r.type === "ext-hdr" ? { type: r.type } : r));
  }

  it("reads no more than a scan of the file, records every message packed, nothing per message but its append, and the same records as the general path", async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mbox-first-sync-"));
    const inbox = path.join(dir, "inbox");
    writeMbox(inbox);
    const before = fs.readFileSync(inbox);
    const file = openMboxFile(inbox, path.join(dir, "redo"));
    const hold = await file.beginWrite({ timeoutMs: 100 });
    const state = emptyIndexMap();
    const pending = { flags: new Set<number>(), expunges: new Set<number>(), any: false };
    let first: LogRecord[];
    let general: LogRecord[];
    let lacking = 0;
    let firstRead: number;
    let scanRead: number;
    let generalRead: number;
    try {
      reads.bytes = 0;
      first = fullSync(hold, state, pending);
      firstRead = reads.bytes;
      reads.bytes = 0;
      const { src, messages } = scanFile(hold.fd, inbox);
      scanRead = reads.bytes;
      const plan = planSync({ state, indexed: [], pending, expunge: new Set(), src, messages });
      lacking = plan.messages.filter((m) => m.lacking).length;
      general = syncRecords({ plan, written: new Set(), syncHeader: stampedHeader(state, hold.fd), stateNextUid: state.header.nextUid });
      generalRead = reads.bytes;
    } finally {
      await hold.end();
      releaseMboxFile(file);
    }
    expect(fs.readFileSync(inbox).equals(before), "nothing written to the file").toBe(true);
    // The streaming first sync, not the general path: each message's header MD5 is made while the scan's window still
    // holds it, so it reads what a scan of the file reads and no more, where the general path scans the whole file
    // first and then reads the lacking headers again (the file is larger than FileSource's 64 KiB window).
    expect(before.length).toBeGreaterThan(64 * 1024);
    expect(firstRead, "bytes the first sync read").toBe(scanRead);
    expect(generalRead, "bytes the general path read").toBeGreaterThan(scanRead);
    expect(comparable(first)).toEqual(comparable(general));
    expect(lacking, "a mix of messages with and without a usable X-UID").toBe(40);

    const extRecs = first.filter((r): r is Extract<LogRecord, { type: "ext-rec" }> => r.type === "ext-rec");
    // From offsets of all, header MD5s of those without a usable X-UID (or with an unknown keyword): each one
    // buffer of {uid, data} entries, no object or view per message.
    expect(extRecs.map((r) => [r.recordSize, r.updates.length, r.packed?.count, r.packed?.bytes.byteLength])).toEqual([
      [8, 0, COUNT, COUNT * 12],
      [16, 0, lacking, lacking * 20],
    ]);
    const append = first.find((r) => r.type === "append");
    expect(append?.type === "append" && append.messages.length).toBe(COUNT);
  });
});

/**
 * How many bytes a scan of an mbox file reads: each about once. A scan
 * searches past its window's end for the next message's From_ line, then
 * comes back to the message's header; the window used to be read again from
 * there (and once more for the From_ line), 3.3x the file per scan.
 */
describe("a scan of an mbox file", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mbox-scan-reads-"));
    reads.bytes = 0;
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** ~2.3 KiB messages of varying size, so that many straddle a window's end; one with Dovecot's headers and a Content-Length. */
  function sampleMbox(count: number, bodyLines = 70): Buffer {
    let text = "";
    for (let i = 1; i <= count; i++) {
      text += `From a${i}@b  Mon Nov 23 09:40:${String(i % 60).padStart(2, "0")} 2026\n`;
      if (i === 1) text += "X-IMAPbase: 1700000000 0000000000 foo\n";
      text += `Subject: ${i}\nStatus: ${i % 2 ? "RO" : "O"}\n`;
      if (i % 7 === 0) text += `X-UID: ${i}\nX-Keywords: foo\n`;
      const body = "Lorem ipsum dolor sit amet.\n".repeat(bodyLines + (i % 13)) + (i % 5 === 0 ? "From a body line\n" : "");
      if (i % 9 === 0) text += `Content-Length: ${body.length}\n`;
      text += `\n${body}\n`;
    }
    return Buffer.from(text, "latin1");
  }

  it("a scan of a file of many windows reads each byte about once, and finds what a scan in memory finds", () => {
    const data = sampleMbox(400);
    expect(data.length).toBeGreaterThan(12 * FILE_SOURCE_WINDOW_BYTES);
    const file = path.join(dir, "inbox");
    fs.writeFileSync(file, data);
    const expected = [...scanMbox(bufferSource(data), { path: file })];
    const fd = fs.openSync(file, "r");
    try {
      const got = [...scanMbox(new FileSource(fd), { path: file })];
      expect(got).toEqual(expected);
      expect(got).toHaveLength(400);
    } finally {
      fs.closeSync(fd);
    }
    // Was 3.3x the file: each window read again at the From_ line and the header of the message straddling its end.
    expect(reads.bytes).toBeGreaterThanOrEqual(data.length);
    expect(reads.bytes).toBeLessThanOrEqual(data.length + FILE_SOURCE_WINDOW_BYTES);
  });

  it("messages of up to half a window are read once too", () => {
    // ~30 KiB each: the search for the next From_ line runs far past the message's start before the window ends.
    const data = sampleMbox(40, 1100);
    expect(data.length).toBeGreaterThan(12 * FILE_SOURCE_WINDOW_BYTES);
    const file = path.join(dir, "inbox");
    fs.writeFileSync(file, data);
    const fd = fs.openSync(file, "r");
    try {
      expect([...scanMbox(new FileSource(fd), { path: file })]).toEqual([...scanMbox(bufferSource(data), { path: file })]);
    } finally {
      fs.closeSync(fd);
    }
    expect(reads.bytes).toBeLessThanOrEqual(data.length + FILE_SOURCE_WINDOW_BYTES);
  });

  it("a message larger than the window still scans as in memory", () => {
    const big = "x".repeat(100) + "\n";
    const text =
      "From a@b  Mon Nov 23 09:40:07 2026\nSubject: 1\n\none\n\n" +
      `From a@b  Mon Nov 23 09:40:08 2026\nSubject: 2\n\n${big.repeat(2000)}\n` +
      "From a@b  Mon Nov 23 09:40:09 2026\nSubject: 3\nX-UID: 9\n\nthree\n";
    const data = Buffer.from(text, "latin1");
    const file = path.join(dir, "big");
    fs.writeFileSync(file, data);
    const fd = fs.openSync(file, "r");
    try {
      expect([...scanMbox(new FileSource(fd, 4096), { path: file })]).toEqual([...scanMbox(bufferSource(data), { path: file })]);
    } finally {
      fs.closeSync(fd);
    }
  });
});
