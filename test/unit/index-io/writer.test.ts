import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { IndexWriter } from "../../../src/index-io/writer.js";
import { ClosedIndexCache } from "../../../src/index-io/closed-index-cache.js";
import { loadState } from "../../../src/index-io/load-state.js";
import { readCheckpoint } from "../../../src/index-io/checkpoint-file.js";
import { TransactionLog } from "../../../src/log/log.js";
import { logReadCount } from "../../../src/log/shared-file.js";
import type { LogRecord } from "../../../src/log/types.js";
import { position } from "../../../src/projections/read.js";
import type { TransactionEffects } from "../../../src/projections/effects.js";

const append = (uid: number): LogRecord => ({ type: "append", external: true, sync: false, messages: [{ uid, flags: 0 }] });
const seen = (uid: number): LogRecord => ({
  type: "flag-update", external: false, sync: false, updates: [{ uid1: uid, uid2: uid, addFlags: 1, removeFlags: 0, modseqIncFlag: 0 }],
});

describe("index writer", () => {
  let dir: string;
  let prefix: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-writer-"));
    prefix = path.join(dir, "dovecot.index");
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("ends a syncing write with the tail-offset update exactly at the end of the log, and skips it when the tail would not move", async () => {
    const writer = IndexWriter.open(prefix, { create: {}, filesFollowTail: true });
    await writer.sync(async (s) => {
      await s.append([[append(1)], [seen(1)]]);
      expect(s.state.header.logFileTailOffset).toBeLessThan(s.state.header.logFileHeadOffset);
      // The files caught up with nothing to log: the tail update alone.
      const tailOnly = await s.append([], { syncTail: true });
      expect(tailOnly?.transactions).toHaveLength(1);
      expect(s.state.header.logFileTailOffset).toBe(s.state.header.logFileHeadOffset);
      // Tail at the head and nothing to write: nothing is written.
      expect(await s.append([], { syncTail: true })).toBeUndefined();
      const both = await s.append([[seen(1)]], { syncTail: true });
      expect(both?.transactions).toHaveLength(2);
      expect(s.state.header.logFileTailOffset).toBe(s.state.header.logFileHeadOffset);
    });
    // What the writer folded is what a fresh read of the files gives.
    const reread = loadState(prefix);
    expect(reread.header.logFileTailOffset).toBe(reread.header.logFileHeadOffset);
    expect(position(reread)).toEqual(position(writer.state));
    expect(reread.header).toEqual(writer.state.header);
    await writer.close();
  });

  it("reads the log once per sync: the catch-up under the lock is folded, never read again", async () => {
    const writer = IndexWriter.open(prefix, { create: {} });
    const other = TransactionLog.open(prefix);
    await other.append([append(1)]);
    await other.append([append(2)]);
    const before = logReadCount();
    await writer.sync(async (s) => {
      expect(s.state.records.count).toBe(2);
      await s.append([[seen(2)]]);
    });
    expect(logReadCount() - before).toBe(1);
    // Nothing new: the sync reads nothing.
    const idle = logReadCount();
    await writer.sync(async () => undefined);
    expect(logReadCount() - idle).toBe(0);
    await other.close();
    await writer.close();
  });

  it("opens reading the log once, and an unlocked refresh folds what others appended", async () => {
    const first = IndexWriter.open(prefix, { create: {} });
    await first.sync(async (s) => void (await s.append([[append(1)], [append(2)]])));
    await first.close();
    const before = logReadCount();
    const writer = IndexWriter.open(prefix);
    expect(logReadCount() - before).toBe(1);
    const other = TransactionLog.open(prefix);
    await other.append([append(3)]);
    expect(writer.refresh().records.count).toBe(3);
    await other.close();
    await writer.close();
  });

  it("folds what it appended when the state is next read, or when a cache entry it closed into is taken: the same state as a fresh load", async () => {
    const closedIndexes = new ClosedIndexCache();
    const writer = IndexWriter.open(prefix, { create: {}, closedIndexes });
    await writer.sync(async (s) => {
      await s.append([[append(1)], [append(2)]]);
      // Read under the lock: caught up with what was just written.
      expect(s.state.records.count).toBe(2);
      await s.append([[seen(2)]]);
    });
    await writer.sync(async (s) => void (await s.append([[seen(1)]])));
    const fresh = loadState(prefix);
    expect(writer.state.header).toEqual(fresh.header);
    expect(writer.state.logModseq).toBe(fresh.logModseq);
    await writer.sync(async (s) => void (await s.append([[append(3)]])));
    await writer.close();
    // Closed with its last append unfolded: the next open in this process continues from the cache entry.
    const reopened = IndexWriter.open(prefix, { closedIndexes });
    const again = loadState(prefix);
    expect(reopened.state.records.count).toBe(3);
    expect(reopened.state.header).toEqual(again.header);
    expect(position(reopened.state)).toEqual(position(again));
    await reopened.close();
    closedIndexes.clear();
  });

  it("indexTail rewrites dovecot.index once rewriteMinLogBytes of log is not in it, and not below", async () => {
    const uidValidity: LogRecord = { type: "header-update", external: true, sync: false, patches: [{ offset: 24, data: new Uint8Array([1, 0, 0, 0]) }] };
    const writer = IndexWriter.open(prefix, { create: { initialRecords: [uidValidity] }, rewriteMinLogBytes: 512, rewriteMaxLogBytes: 1 << 20 });
    await writer.sync(async (s) => void (await s.append([[append(1)]])));
    await writer.indexTail();
    expect(fs.existsSync(prefix)).toBe(false);
    for (let uid = 2; fs.statSync(prefix + ".log").size < 1024; uid++) await writer.sync(async (s) => void (await s.append([[append(uid)]])));
    expect(fs.existsSync(prefix)).toBe(false);
    await writer.indexTail();
    expect(position(readCheckpoint(prefix)!)).toEqual(position(writer.state));
    await writer.close();
  });

  it("reports the effects of every folded transaction, its own and others', once each in log order", async () => {
    const writer = IndexWriter.open(prefix, { create: {} });
    const seenEffects: TransactionEffects[] = [];
    writer.onFold = (fx) => seenEffects.push(fx);
    const other = TransactionLog.open(prefix);
    await other.append([append(1)]);
    await writer.sync(async (s) => void (await s.append([[seen(1)]])));
    writer.refresh();
    expect(seenEffects.map((fx) => fx.effects.map((e) => e.type))).toEqual([["append"], ["flags"]]);
    for (let i = 1; i < seenEffects.length; i++) expect(seenEffects[i].position).toEqual(seenEffects[i - 1].end);
    await other.close();
    await writer.close();
  });

  it("keeps the effects after the tail for a file sync, and drops them once the tail passes them", async () => {
    const writer = IndexWriter.open(prefix, { create: {}, filesFollowTail: true });
    await writer.sync(async (s) => {
      await s.append([[append(1)]], { syncTail: true });
      expect(s.unsyncedEffects).toEqual([]);
      await s.append([[seen(1)]]);
      expect(s.unsyncedEffects?.map((fx) => fx.effects[0].type)).toEqual(["flags"]);
      await s.append([], { syncTail: true });
      expect(s.unsyncedEffects).toEqual([]);
    });
    await writer.close();
  });

  it("rewrites dovecot.index before releasing the lock once the log it does not cover passes the limit", async () => {
    // dovecot.index needs a UIDVALIDITY (base header offset 24).
    const uidValidity: LogRecord = { type: "header-update", external: true, sync: false, patches: [{ offset: 24, data: new Uint8Array([1, 0, 0, 0]) }] };
    const writer = IndexWriter.open(prefix, { create: { initialRecords: [uidValidity] }, rewriteMaxLogBytes: 1024 });
    await writer.sync(async (s) => void (await s.append([[append(1)]])));
    expect(fs.existsSync(prefix)).toBe(false);
    for (let uid = 2; fs.existsSync(prefix) === false; uid++) {
      expect(uid).toBeLessThan(200);
      await writer.sync(async (s) => void (await s.append([[append(uid)]])));
    }
    const checkpoint = readCheckpoint(prefix)!;
    expect(position(checkpoint)).toEqual(position(writer.state));
    await writer.close();
  });

  it("rewrites dovecot.index once what it appended changes rewriteMinFoldRows rows (a flag on a whole mailbox: a few bytes of log that every open would fold again), not below", async () => {
    const uidValidity: LogRecord = { type: "header-update", external: true, sync: false, patches: [{ offset: 24, data: new Uint8Array([1, 0, 0, 0]) }] };
    const limits = { rewriteMinLogBytes: 1 << 20, rewriteMaxLogBytes: 1 << 20, rewriteMinFoldRows: 100 };
    const writer = IndexWriter.open(prefix, { create: { initialRecords: [uidValidity] }, ...limits });
    const many: LogRecord = { type: "append", external: true, sync: false, messages: Array.from({ length: 150 }, (_, i) => ({ uid: i + 1, flags: 0 })) };
    await writer.sync(async (s) => void (await s.append([[many]])));
    expect(fs.existsSync(prefix)).toBe(false);
    const flags = (uid1: number, uid2: number, keyword = false): LogRecord =>
      keyword
        ? { type: "keyword-update", external: false, sync: false, modifyType: "add", name: "$Label1", ranges: [{ uid1, uid2 }] }
        : { type: "flag-update", external: false, sync: false, updates: [{ uid1, uid2, addFlags: 8, removeFlags: 0, modseqIncFlag: 0 }] };
    // 99 rows in all: under the limit.
    await writer.sync(async (s) => void (await s.append([[flags(1, 60)], [flags(61, 99, true)]])));
    expect(fs.existsSync(prefix)).toBe(false);
    // 11 more: dovecot.index is written, with everything up to here.
    await writer.sync(async (s) => void (await s.append([[flags(140, 150)]])));
    expect(fs.existsSync(prefix)).toBe(true);
    expect(position(readCheckpoint(prefix)!)).toEqual(position(writer.state));
    expect(readCheckpoint(prefix)!.header.seenMessagesCount).toBe(60 + 11);
    // Counted again from there: one more small change leaves it where it is.
    const at = position(writer.state);
    await writer.sync(async (s) => void (await s.append([[seen(3)]])));
    expect(position(readCheckpoint(prefix)!)).toEqual(at);
    await writer.close();
  });

  it("rewrites dovecot.index at the lower limit once opening had to read that much log, as Dovecot's rewrite_min_log_bytes", async () => {
    const uidValidity: LogRecord = { type: "header-update", external: true, sync: false, patches: [{ offset: 24, data: new Uint8Array([1, 0, 0, 0]) }] };
    const limits = { rewriteMinLogBytes: 512, rewriteMaxLogBytes: 1 << 20 };
    const first = IndexWriter.open(prefix, { create: { initialRecords: [uidValidity] }, ...limits });
    // Past the lower limit, but this writer opened an empty log: no rewrite.
    for (let uid = 1; uid <= 40; uid++) await first.sync(async (s) => void (await s.append([[append(uid)]])));
    expect(fs.statSync(prefix + ".log").size).toBeGreaterThan(512);
    expect(fs.existsSync(prefix)).toBe(false);
    await first.close();

    // The next writer reads all of it on open, so its first sync writes dovecot.index.
    const second = IndexWriter.open(prefix, limits);
    expect(fs.existsSync(prefix)).toBe(false);
    await second.sync(async (s) => void (await s.append([[seen(1)]])));
    expect(position(readCheckpoint(prefix)!)).toEqual(position(second.state));
    // Then it is back to the upper limit: a few more syncs leave the checkpoint where it was.
    const at = position(second.state);
    for (let uid = 41; uid <= 80; uid++) await second.sync(async (s) => void (await s.append([[append(uid)]])));
    expect(position(readCheckpoint(prefix)!)).toEqual(at);
    await second.close();
  });
});
