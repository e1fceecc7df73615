import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TransactionLog } from "../../../src/log/log.js";
import { readLog, readLogTail } from "../../../src/log/view.js";
import { encodeTransaction } from "../../../src/log/encode-file.js";
import { LogChainError, LogPositionLostError } from "../../../src/shared/errors.js";
import type { LogRecord } from "../../../src/log/types.js";

let dir: string;
let prefix: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-log-"));
  prefix = path.join(dir, "dovecot.index");
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const append = (uid: number, flags = 0): LogRecord => ({ type: "append", external: true, sync: false, messages: [{ uid, flags }] });
const seen = (uid: number): LogRecord => ({
  type: "flag-update", external: false, sync: false,
  updates: [{ uid1: uid, uid2: uid, addFlags: 8, removeFlags: 0, modseqIncFlag: 0 }],
});

describe("TransactionLog", () => {
  it("creates a log, appends transactions and reads them back with positions and modseqs", async () => {
    const log = TransactionLog.open(prefix, { create: { indexId: 1234 }, fsync: "never" });
    const first = await log.append([append(1), seen(1)]);
    expect(first.start).toEqual({ fileSeq: 1, offset: 40 });
    expect(first.modseq).toBe(3n);
    const second = await log.append([append(2)]);
    expect(second.start).toEqual(first.end);
    const read = readLog(prefix);
    expect(read.fromScratch).toBe(true);
    expect(read.transactions.map((t) => t.entries.map((e) => e.record.type))).toEqual([["append", "flag-update"], ["append"]]);
    expect(read.end).toEqual(second.end);
    expect(read.endModseq).toBe(4n);
    expect(readLog(prefix, first.end).transactions).toHaveLength(1);
    expect(() => readLog(prefix, { fileSeq: 1, offset: 44 })).toThrow(LogPositionLostError);
    await log.close();
  });

  it("serialises concurrent in-process commits without interleaving", async () => {
    const a = TransactionLog.open(prefix, { create: {}, fsync: "batch" });
    const b = TransactionLog.open(prefix, { fsync: "batch" });
    const commits = [];
    for (let uid = 1; uid <= 200; uid++) commits.push((uid % 2 ? a : b).append([append(uid), seen(uid)]));
    await Promise.all(commits);
    const uids = readLog(prefix).transactions.map((t) => {
      expect(t.entries.map((e) => e.record.type)).toEqual(["append", "flag-update"]);
      const r = t.entries[0].record;
      return r.type === "append" ? r.messages[0].uid : -1;
    });
    expect(uids.sort((x, y) => x - y)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    await a.close();
    await b.close();
  });

  it("cuts off an unfinished transaction left by a crashed writer before appending", async () => {
    const log = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    const done = await log.append([append(1)]);
    fs.appendFileSync(prefix + ".log", Buffer.from([0x80, 0x80, 0x80, 0x90, 2, 0, 0, 0, 9]));
    const next = await log.append([append(2)]);
    expect(next.start).toEqual(done.end);
    expect(fs.statSync(prefix + ".log").size).toBe(next.end.offset);
    expect(readLog(prefix).transactions).toHaveLength(2);
    await log.close();
  });

  it("rotates to .log.2 with chained prev_file_seq/offset and keeps every transaction readable", async () => {
    const log = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    const before = await log.append([append(1), seen(1)]);
    const header = await log.rotate();
    expect(header).toMatchObject({ fileSeq: 2, prevFileSeq: 1, prevFileOffset: before.end.offset, initialModseq: before.modseq });
    const after = await log.append([append(2)]);
    expect(after.start).toEqual({ fileSeq: 2, offset: 40 });
    expect(after.modseq).toBe(before.modseq + 1n);
    const all = readLog(prefix);
    expect(all.transactions.map((t) => t.position.fileSeq)).toEqual([1, 2]);
    expect(readLog(prefix, before.end).transactions).toHaveLength(1);
    // A second writer that still had the old file open follows the rotation.
    await log.rotate();
    expect(() => readLog(prefix, { fileSeq: 1, offset: 40 })).toThrow(LogPositionLostError);
    await log.close();
  });

  it("follows a rotation made by another writer", async () => {
    const a = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    const b = TransactionLog.open(prefix, { fsync: "never" });
    await a.append([append(1)]);
    await a.rotate();
    const r = await b.append([append(2)]);
    expect(r.start.fileSeq).toBe(2);
    expect(readLog(prefix).transactions).toHaveLength(2);
    await a.close();
    await b.close();
  });

  it("refuses .log.2 files that do not chain", async () => {
    const log = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    await log.append([append(1)]);
    await log.rotate();
    fs.appendFileSync(prefix + ".log.2", encodeOne(append(9)));
    expect(() => readLog(prefix)).toThrow(LogChainError);
    await log.close();
  });

  it("transact builds records under the lock after catching up; readLogTail reads only what is new", async () => {
    const a = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    const b = TransactionLog.open(prefix, { fsync: "never" });
    const first = await a.append([append(1)]);
    await b.append([append(2), seen(2)]);
    const tail = readLogTail(prefix, first.end, first.modseq);
    expect(tail.transactions.map((t) => t.entries.length)).toEqual([2]);
    expect(tail.endModseq).toBe(readLog(prefix).endModseq);
    const nothing = await a.transact(async () => []);
    expect(nothing).toBeUndefined();
    const r = await a.transact(async () => {
      const seenNow = readLogTail(prefix, first.end, first.modseq);
      return [[append(3 + seenNow.transactions.length)]];
    });
    expect(r!.transactions[0].entries[0].record).toMatchObject({ messages: [{ uid: 4 }] });
    expect(readLogTail(prefix, { fileSeq: 1, offset: 40 }, 1n).transactions).toHaveLength(3);
    await a.close();
    await b.close();
  });

  it("decides rotation by Dovecot's size and age rules", async () => {
    const log = TransactionLog.open(prefix, { create: {}, fsync: "never", rotate: { minSizeBytes: 100, maxSizeBytes: 400 } });
    expect(log.shouldRotate()).toBe(false);
    for (let uid = 1; uid <= 6; uid++) await log.append([append(uid)]);
    expect(log.shouldRotate()).toBe(false);
    expect(log.shouldRotate(log.header.createStamp + 301)).toBe(true);
    for (let uid = 7; uid <= 30; uid++) await log.append([append(uid)]);
    expect(log.shouldRotate()).toBe(true);
    await log.close();
  });
});

function encodeOne(r: LogRecord): Uint8Array {
  return encodeTransaction([r]);
}

describe("new log files", () => {
  it("take the directory's read/write bits, as Dovecot's index files do (not narrowed by the umask)", async () => {
    for (const dirMode of [0o755, 0o700, 0o770]) {
      const sub = path.join(dir, dirMode.toString(8));
      fs.mkdirSync(sub);
      fs.chmodSync(sub, dirMode);
      const log = TransactionLog.open(path.join(sub, "dovecot.index"), { create: {}, fsync: "never" });
      await log.close();
      expect(fs.statSync(path.join(sub, "dovecot.index.log")).mode & 0o777).toBe(dirMode & 0o666);
    }
  });
});
