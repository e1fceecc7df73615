import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TransactionLog } from "../../../src/log/log.js";
import { decodeLogSegment, readLogSegments } from "../../../src/log/segments.js";
import type { LogRecord } from "../../../src/log/types.js";
import { readLog } from "../../../src/log/view.js";

let dir: string;
let prefix: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "segments-"));
  prefix = path.join(dir, "dovecot.index");
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const append = (uid: number): LogRecord => ({ type: "append", external: true, sync: false, messages: [{ uid, flags: 0 }] });

describe("readLogSegments / decodeLogSegment", () => {
  it("ships a range as the exact file bytes and decodes it to readLog's transactions, positions and modseqs", async () => {
    const log = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    const first = await log.append([append(1)]);
    await log.append([append(2)]);
    const last = await log.append([append(3), { type: "flag-update", external: false, sync: false, updates: [{ uid1: 1, uid2: 3, addFlags: 1, removeFlags: 0, modseqIncFlag: 0 }] }]);
    const segments = readLogSegments(prefix, first.end, 2n, last.end);
    expect(segments).toHaveLength(1);
    const file = fs.readFileSync(prefix + ".log");
    expect(Buffer.from(segments[0].bytes)).toEqual(file.subarray(first.end.offset, last.end.offset));
    expect(Buffer.from(segments[0].headerBytes)).toEqual(file.subarray(0, segments[0].headerBytes.length));
    const expected = readLog(prefix, first.end).transactions;
    expect(decodeLogSegment(segments[0], "x")).toEqual(expected);
    // From the start of the file (offset 0: its initial modseq).
    expect(decodeLogSegment(readLogSegments(prefix, { fileSeq: 1, offset: 0 }, undefined, last.end)[0], "x")).toEqual(readLog(prefix).transactions);
    await log.close();
  });

  it("a range across a rotation is two segments, one per file", async () => {
    const log = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    const first = await log.append([append(1)]);
    await log.append([append(2)]);
    await log.rotate();
    const last = await log.append([append(3)]);
    const segments = readLogSegments(prefix, first.end, 2n, last.end);
    expect(segments.map((s) => s.fileSeq)).toEqual([1, 2]);
    const decoded = segments.flatMap((s) => decodeLogSegment(s, "x"));
    expect(decoded).toEqual(readLog(prefix, first.end).transactions);
    expect(decoded.map((t) => t.modseq)).toEqual([3n, 4n]);
    await log.close();
  });
});
