import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { IndexWriter } from "../../../src/index-io/writer.js";
import { isBefore, loadState, stateAt } from "../../../src/index-io/load-state.js";
import { readLog } from "../../../src/log/view.js";
import { readCheckpoint } from "../../../src/index-io/checkpoint-file.js";
import { searchRanges, searchUids } from "../../../src/api/search.js";
import { openStorage } from "../../../src/index.js";
import type { ChangeBatch } from "../../../src/api/changes.js";
import { IndexCorruptedError, InvalidArgumentError } from "../../../src/shared/errors.js";
import { MailFlag, type LogRecord } from "../../../src/log/types.js";
import { encodeIndexFile } from "../../../src/projections/index-file.js";
import { keywordsAt, position } from "../../../src/projections/read.js";
import type { IndexMapState } from "../../../src/projections/state.js";
import { HDR, R } from "../projections/log-builder.js";

/*
 * A dovecot.index an index writer opens reads its header only, and its rows
 * when a command first needs one. A broken row (or counter) must end as it
 * does when the whole file is read at open: the state comes from the log
 * without the checkpoint, nothing is lost, and the next checkpoint repairs
 * the file. Each case here failed on the first attempt (branch lazy1, 7292450).
 */

// 8-byte records: 80 KiB, past readCheckpoint's LAZY_MIN_BYTES (64 KiB).
const N = 10 * 1024;
const appendAll: LogRecord = {
  type: "append", external: false, sync: false,
  messages: Array.from({ length: N }, (_, i) => ({ uid: i + 1, flags: i % 3 === 0 ? MailFlag.SEEN : 0 })),
};
const flag = (uid: number, add: number): LogRecord => ({
  type: "flag-update", external: false, sync: false, updates: [{ uid1: uid, uid2: uid, addFlags: add, removeFlags: 0, modseqIncFlag: 0 }],
});
/** Base header offsets (index-file.md §2). */
const SEEN_COUNT_AT = 40;

describe("index writer over a dovecot.index whose rows are read lazily", () => {
  let dir: string;
  let prefix: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-load-lazy-"));
    prefix = path.join(dir, "dovecot.index");
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function append(writer: IndexWriter, records: LogRecord[]): Promise<void> {
    await writer.sync(async (s) => {
      await s.append([records]);
    }, "none");
  }

  /**
   * N messages logged, dovecot.index written as of them, then `tail` logged
   * after it; `breakIt` changes the file's bytes (header size and record
   * size given).
   */
  async function store(tail: LogRecord[], breakIt: (bytes: DataView, headerSize: number, recordSize: number) => void): Promise<void> {
    const writer = IndexWriter.open(prefix, { create: {} });
    await append(writer, [R.headerU32(HDR.uidValidity, 1), appendAll]);
    const bytes = encodeIndexFile(writer.state);
    for (const r of tail) await append(writer, [r]);
    await writer.close();
    const view = new DataView(bytes.buffer);
    breakIt(view, view.getUint32(4, true), view.getUint32(8, true));
    fs.writeFileSync(prefix, bytes);
    expect(bytes.length).toBeGreaterThan(64 * 1024);
  }

  /** The state the log alone gives (no dovecot.index), as bytes. */
  function fromLogAlone(): Uint8Array {
    const copy = fs.mkdtempSync(path.join(dir, "log-"));
    for (const f of fs.readdirSync(dir)) if (f.startsWith("dovecot.index.log")) fs.copyFileSync(path.join(dir, f), path.join(copy, f));
    return encodeIndexFile(loadState(path.join(copy, "dovecot.index")));
  }

  const breakRow = (index: number) => (v: DataView, headerSize: number, recordSize: number) => v.setUint32(headerSize + index * recordSize, 1, true);

  it("a broken row the tail fold did not touch is found, the state loaded from the log, and later commands work on", async () => {
    // The tail touches uid 3 (first rows), the broken row is near the end.
    await store([flag(3, MailFlag.FLAGGED)], breakRow(N - 5));
    const writer = IndexWriter.open(prefix);
    await append(writer, [flag(5, MailFlag.FLAGGED)]);
    // Every row read (unseen walks them all): no error, the right answer.
    expect(searchUids(writer.state, [{ type: "flag", flag: MailFlag.SEEN, set: false }]).length).toBe(N - Math.ceil(N / 3));
    await writer.close();
    const again = IndexWriter.open(prefix);
    await append(again, [flag(N - 5, MailFlag.FLAGGED)]);
    expect(encodeIndexFile(again.state)).toEqual(fromLogAlone());
    await again.close();
  });

  it("a seen counter that does not match the rows is found before any fold trusts it: every later open works", async () => {
    await store([flag(2, MailFlag.SEEN)], (v) => v.setUint32(SEEN_COUNT_AT, v.getUint32(SEEN_COUNT_AT, true) + 1, true));
    for (let round = 0; round < 2; round++) {
      const writer = IndexWriter.open(prefix);
      await append(writer, [flag(5 + round, MailFlag.SEEN)]);
      expect(writer.state.header.seenMessagesCount).toBe(Math.ceil(N / 3) + 2 + round);
      expect(encodeIndexFile(writer.state)).toEqual(fromLogAlone());
      await writer.close();
    }
    expect(encodeIndexFile(loadState(prefix))).toEqual(fromLogAlone());
  });

  it("after a restart without the checkpoint, dovecot.index counts as missing: the next sync rewrites it", async () => {
    // The tail fold reads the rows and finds the broken one: loadState starts again from the log alone.
    await store([flag(3, MailFlag.FLAGGED)], breakRow(N - 5));
    expect(() => readCheckpoint(prefix)).toThrow(/record/);
    const writer = IndexWriter.open(prefix);
    // A sync that writes: the log (80 KiB of appends) is all unindexed, past rewrite_min_log_bytes.
    await writer.sync(async (s) => {
      await s.append([[flag(7, MailFlag.FLAGGED)]]);
    });
    const end = position(writer.state);
    await writer.close();
    const rewritten = readCheckpoint(prefix)!;
    expect(position(rewritten)).toEqual(end);
    expect(encodeIndexFile(rewritten)).toEqual(fromLogAlone());
  });

  it("a broken row found after the open (no tail to fold) reloads the writer's state from the log, and the next sync rewrites dovecot.index", async () => {
    await store([], breakRow(N - 5));
    const writer = IndexWriter.open(prefix);
    await writer.sync(async (s) => {
      expect(s.state.records.indexOfUid(N - 5)).toBe(N - 6);
      await s.append([[flag(N - 5, MailFlag.FLAGGED)]]);
    });
    await writer.close();
    expect(encodeIndexFile(readCheckpoint(prefix)!)).toEqual(fromLogAlone());
  });

  it("a broken row found by a fold loads the state again where it was: the fold's own and others' transactions still reach onFold", async () => {
    await store([], breakRow(N - 5));
    const writer = IndexWriter.open(prefix);
    const seen: number[] = [];
    writer.onFold = (fx) => seen.push(fx.effects.length);
    // Its own append: folded at once (a listener), after the rows are read and found broken.
    await append(writer, [flag(5, MailFlag.FLAGGED)]);
    expect(seen).toEqual([1]);
    await writer.close();
    // Another writer's transaction, caught up by refresh().
    const reader = IndexWriter.open(prefix);
    const other = IndexWriter.open(prefix);
    await append(other, [flag(6, MailFlag.FLAGGED)]);
    await other.close();
    const folded: number[] = [];
    reader.onFold = (fx) => folded.push(fx.effects.length);
    reader.refresh();
    expect(folded).toEqual([1]);
    expect(encodeIndexFile(reader.state)).toEqual(fromLogAlone());
    await reader.close();
  });

  it("loadState's until: the state at each transaction boundary, before the checkpoint (not used) or after it, with its modseq", async () => {
    await store([flag(3, MailFlag.FLAGGED), flag(4, MailFlag.SEEN)], () => undefined);
    // dovecot.index at the end: every earlier `until` is before it, and the load starts from the log alone.
    const writer = IndexWriter.open(prefix);
    await writer.sync(async () => undefined, "always");
    await writer.close();
    const checkpointAt = position(readCheckpoint(prefix)!);
    const { transactions } = readLog(prefix);
    expect(transactions.length).toBe(3);
    for (const tx of transactions) {
      let told: unknown;
      const at = loadState(prefix, { until: tx.end, onCheckpoint: (p) => (told = p) });
      expect(position(at)).toEqual(tx.end);
      expect(at.logModseq).toBe(tx.modseq);
      expect(encodeIndexFile(at)).toEqual(encodeIndexFile(stateAt(prefix, tx.end)));
      expect(told).toEqual(isBefore(tx.end, checkpointAt) ? undefined : checkpointAt);
    }
  });

  it("a next_uid at or below the last row's uid is found at the open (the last uid read alone), not answered from the header", async () => {
    // Base header offset of next_uid (index-file.md §2).
    await store([], (v) => v.setUint32(28, N - 50, true));
    expect(() => readCheckpoint(prefix)).toThrow(/next_uid/);
    const writer = IndexWriter.open(prefix);
    writer.catchUp();
    expect(writer.headerState.header.nextUid).toBe(N + 1);
    expect(encodeIndexFile(writer.state)).toEqual(fromLogAlone());
    await writer.close();
  });

  it("a writer's catch-up and header state read no row; its state reads them all, and matches the whole read", async () => {
    await store([flag(3, MailFlag.FLAGGED)], () => undefined);
    fs.unlinkSync(prefix);
    const whole = IndexWriter.open(prefix);
    await whole.sync(async () => undefined, "always");
    const expected = encodeIndexFile(whole.state);
    await whole.close();
    const writer = IndexWriter.open(prefix);
    writer.catchUp();
    expect(writer.headerState.records.unread).toBe(true);
    expect(writer.headerState.header.nextUid).toBe(N + 1);
    expect(writer.state.records.unread).toBe(false);
    expect(encodeIndexFile(writer.state)).toEqual(expected);
    await writer.close();
  });

  it("one-uid lookups on unread rows answer as the whole read does, dense or not (fast-check)", async () => {
    // Expunged: a run early on (uids past it are no longer dense) and the last 7.
    const expunge: LogRecord = { type: "expunge", external: true, sync: false, ranges: [{ uid1: 3000, uid2: 3010 }, { uid1: N - 6, uid2: N }] };
    await store([expunge], () => undefined);
    fs.unlinkSync(prefix);
    const whole = IndexWriter.open(prefix);
    await whole.sync(async () => undefined, "always");
    const eager = whole.state;
    await whole.close();
    expect(eager.records.count).toBe(N - 18);
    // Past the expunged run the dense guess misses: the whole read answers.
    const probe = loadState(prefix, { lazy: true }).records;
    expect(probe.indexOfUid(2000)).toBe(1999);
    expect(probe.unread).toBe(true);
    expect(probe.indexOfUid(5000)).toBe(4988);
    expect(probe.unread).toBe(false);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: N + 2 }), fc.integer({ min: 0, max: eager.records.count - 1 }), (uid, index) => {
        const lazy = () => loadState(prefix, { lazy: true }).records;
        expect(lazy().rangeOfUids(uid, uid)).toEqual(eager.records.rangeOfUids(uid, uid));
        expect(lazy().indexOfUid(uid)).toBe(eager.records.indexOfUid(uid));
        expect(lazy().uidAt(index)).toBe(eager.records.uidAt(index));
        const [a, b] = [lazy().row(index), eager.records.row(index)];
        expect(a.bytes.subarray(a.offset, a.offset + 8)).toEqual(b.bytes.subarray(b.offset, b.offset + 8));
        const seen: number[] = [];
        lazy().visitRows(index, index, (_bytes, words, offset, i) => seen.push(words[offset >>> 2], i));
        expect(seen).toEqual([eager.records.uidAt(index), index]);
      }),
      { numRuns: 60 },
    );
  });

  it("holds a bounded number of descriptors however many states are opened and kept unread", async () => {
    await store([], () => undefined);
    const fds = () => fs.readdirSync("/proc/self/fd").length;
    const before = fds();
    const states: IndexMapState[] = [];
    for (let i = 0; i < 40; i++) states.push(loadState(prefix, { lazy: true }));
    expect(fds() - before).toBeLessThanOrEqual(8);
    // Each still reads its rows, the ones read early included.
    for (const s of [states[0], states[39]]) expect(s.records.uidAt(N - 1)).toBe(N);
  });
});

describe("a flag of one message over a dovecot.index read lazily (the leaves it needs only)", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-load-lazy-probe-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const messages = 3500;
  /** An mdbox INBOX of `messages`, dovecot.index covering them (4 leaves of rows); `breakIt(index bytes, headerSize, recordSize)`. */
  async function mdboxStore(breakIt: (bytes: Buffer, headerSize: number, recordSize: number) => void): Promise<string> {
    const location = `mdbox:${dir}/mail`;
    const storage = openStorage(location);
    await storage.createMailbox("INBOX");
    const box = await storage.openMailbox("INBOX");
    const t = box.transaction();
    for (let i = 0; i < messages; i++) t.append({ body: `Subject: m${i}\r\n\r\nbody ${i}\r\n`, flags: i % 2 === 0 ? ["\\Seen"] : [] });
    await t.commit();
    await box.indexLogTail();
    await storage.close();
    const index = path.join(dir, "mail", "mailboxes", "INBOX", "dbox-Mails", "dovecot.index");
    const bytes = fs.readFileSync(index);
    expect(bytes.length).toBeGreaterThan(64 * 1024);
    breakIt(bytes, bytes.readUInt32LE(4), bytes.readUInt32LE(8));
    fs.writeFileSync(index, bytes);
    return location;
  }

  /** Flags uid 3000 (leaf 2) as the CLI's `flags add … uid 3000` does; the flags of 3000 and the seen count after, from a fresh open. */
  async function flagOne(location: string): Promise<{ flags: number; seen: number; unreadAfterSearch: boolean }> {
    let storage = openStorage(location);
    let box = await storage.openMailbox("INBOX");
    await box.catchUp();
    const ranges = box.readState((state) => searchRanges(state, [{ type: "uid", ranges: [{ uid1: 3000, uid2: 3000 }] }]));
    expect(ranges).toEqual([{ uid1: 3000, uid2: 3000 }]);
    // Nothing folded yet: the header state is the one opened (its rows read only if a lookup met a broken one).
    const unreadAfterSearch = box.headerState.records.unread;
    await box.transaction().flags(ranges, "add", ["\\Flagged", "\\Seen"]).commit();
    await storage.close();
    storage = openStorage(location);
    box = await storage.openMailbox("INBOX");
    const state = box.state;
    const row = state.records.row(state.records.indexOfUid(3000));
    const out = { flags: row.bytes[row.offset + 4], seen: state.header.seenMessagesCount, unreadAfterSearch };
    await storage.close();
    return out;
  }
  const SEEN_FLAGGED = MailFlag.SEEN | MailFlag.FLAGGED;

  it("reads no more than the leaves of the lookup: the same flag and counters as a whole read", async () => {
    const r = await flagOne(await mdboxStore(() => undefined));
    expect(r).toEqual({ flags: SEEN_FLAGGED, seen: messages / 2 + 1, unreadAfterSearch: true });
  });

  it("a status of header items reads no row, and storage.close() closes dovecot.index's descriptor (read-only or not)", async () => {
    const location = await mdboxStore(() => undefined);
    const index = fs.realpathSync(path.join(dir, "mail", "mailboxes", "INBOX", "dbox-Mails", "dovecot.index"));
    const openIndexFds = () => fs.readdirSync("/proc/self/fd").filter((fd) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`) === index;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return false; // the listing's own descriptor, gone
        throw err;
      }
    }).length;
    for (const readOnly of [true, false]) {
      const storage = openStorage(location, { readOnly });
      const box = await storage.openMailbox("INBOX");
      expect(await box.status(["messages", "uidnext", "highestmodseq"], { refresh: true })).toMatchObject({ messages, uidnext: messages + 1 });
      expect(box.headerState.records.unread).toBe(true);
      const unread = box.headerState;
      expect(openIndexFds()).toBe(1);
      await storage.close();
      expect(openIndexFds()).toBe(0);
      // Its rows are not read from a file that may have been replaced since: a typed error.
      expect(() => unread.records.load()).toThrow(/closed before these records were read/);
    }
  });

  it("readState retries only a broken row of this dovecot.index, and refuses an async read", async () => {
    const storage = openStorage(await mdboxStore(() => undefined), { readOnly: true });
    const box = await storage.openMailbox("INBOX");
    let calls = 0;
    const otherFile = new IndexCorruptedError("broken", { path: path.join(dir, "elsewhere", "dovecot.map.index") });
    expect(() => box.readState(() => {
      calls++;
      throw otherFile;
    })).toThrow(otherFile);
    expect(calls).toBe(1);
    expect(box.headerState.records.unread).toBe(true);
    expect(() => box.readState(async () => 1)).toThrow(InvalidArgumentError);
    await storage.close();
  });

  it("a flags byte that wrongly shows the change made already: decided again on every row, checked, and the flag lands", async () => {
    // uid 3000 is unseen; its row says seen, which only the seen counter shows.
    const location = await mdboxStore((b, hs, rs) => void (b[hs + 2999 * rs + 4] |= MailFlag.SEEN));
    let storage = openStorage(location);
    let box = await storage.openMailbox("INBOX");
    await box.catchUp();
    const ranges = box.readState((state) => searchRanges(state, [{ type: "uid", ranges: [{ uid1: 3000, uid2: 3000 }] }]));
    const result = await box.transaction().flags(ranges, "add", ["\\Seen"]).commit();
    expect(result).toBeDefined();
    await storage.close();
    storage = openStorage(location);
    box = await storage.openMailbox("INBOX");
    const state = box.state;
    const row = state.records.row(state.records.indexOfUid(3000));
    expect(row.bytes[row.offset + 4] & MailFlag.SEEN).toBe(MailFlag.SEEN);
    expect(state.header.seenMessagesCount).toBe(messages / 2 + 1);
    await storage.close();
  });

  it("a broken row in the looked-up leaf: the mailbox is loaded again and the flag lands", async () => {
    const r = await flagOne(await mdboxStore((b, hs, rs) => b.writeUInt32LE(1, hs + 3005 * rs)));
    expect(r.flags).toBe(SEEN_FLAGGED);
    expect(r.seen).toBe(messages / 2 + 1);
    expect(r.unreadAfterSearch).toBe(false);
  });

  it("a broken row elsewhere, or a wrong seen counter: the flag lands, and the next reads of every row load from the log", async () => {
    for (const breakIt of [(b: Buffer, hs: number, rs: number) => b.writeUInt32LE(1, hs + 1500 * rs), (b: Buffer) => b.writeUInt32LE(b.readUInt32LE(SEEN_COUNT_AT) + 1, SEEN_COUNT_AT)]) {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir);
      const r = await flagOne(await mdboxStore(breakIt));
      expect(r.flags).toBe(SEEN_FLAGGED);
      expect(r.seen).toBe(messages / 2 + 1);
    }
  });
});

describe("commit hooks and change streams over a dovecot.index whose broken row a fold finds", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-load-lazy-fold-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** An mdbox INBOX of 3,000 messages, dovecot.index covering them, row 2900 broken (a leaf no flag of uid 100 or 200 reads). */
  async function brokenStore(): Promise<string> {
    const location = `mdbox:${dir}/mail`;
    const storage = openStorage(location);
    await storage.createMailbox("INBOX");
    const box = await storage.openMailbox("INBOX");
    const t = box.transaction();
    for (let i = 0; i < 3000; i++) t.append({ body: `Subject: m${i}\r\n\r\nbody ${i}\r\n`, flags: [] });
    await t.commit();
    await box.indexLogTail();
    await storage.close();
    const index = path.join(dir, "mail", "mailboxes", "INBOX", "dbox-Mails", "dovecot.index");
    const bytes = fs.readFileSync(index);
    bytes.writeUInt32LE(1, bytes.readUInt32LE(4) + 2900 * bytes.readUInt32LE(8));
    fs.writeFileSync(index, bytes);
    return location;
  }
  const flagged = (batches: ChangeBatch[]) => batches.flatMap((b) => b.changes.map((c) => (c.type === "flags" ? c.uid1 : -1)));

  it("a flag of one uid calls afterCommit once, with its effect", async () => {
    const location = await brokenStore();
    const calls: number[] = [];
    const storage = openStorage(location, { commitHooks: { afterCommit: async (_box, committed) => void calls.push(committed.effects.length) } });
    const box = await storage.openMailbox("INBOX");
    await box.transaction().flags([{ uid1: 100, uid2: 100 }], "add", ["\\Flagged"]).commit();
    await storage.close();
    expect(calls).toEqual([1]);
  });

  it("a subscriber gets what another process committed between the open and the subscription", async () => {
    const location = await brokenStore();
    const a = openStorage(location);
    const box = await a.openMailbox("INBOX");
    const b = openStorage(location);
    const other = await b.openMailbox("INBOX");
    await other.transaction().flags([{ uid1: 200, uid2: 200 }], "add", ["\\Flagged"]).commit();
    await b.close();
    const batches: ChangeBatch[] = [];
    const sub = box.changes().subscribe((batch) => batches.push(batch));
    // The commit catches up first: 200 is folded (and published) before 300, in log order.
    await box.transaction().flags([{ uid1: 300, uid2: 300 }], "add", ["\\Flagged"]).commit();
    sub.unsubscribe();
    await a.close();
    expect(flagged(batches)).toEqual([200, 300]);
  });
});

describe("force-resync of an mdbox mailbox whose dovecot.index has one broken row", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-load-lazy-mdbox-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("keeps the flags and keywords set since dovecot.index.backup (rebuilt from the log, not from the backup)", async () => {
    const location = `mdbox:${dir}/mail`;
    const messages = 3500;
    let storage = openStorage(location);
    await storage.createMailbox("INBOX");
    let box = await storage.openMailbox("INBOX");
    const t = box.transaction();
    for (let i = 0; i < messages; i++) t.append({ body: `Subject: m${i}\r\n\r\nbody ${i}\r\n` });
    await t.commit();
    await box.indexLogTail();
    // A second rewrite (its log changes more than 4,096 rows), so that dovecot.index.backup exists.
    await box.transaction().flags([{ uid1: 1, uid2: messages }], "add", ["\\Answered"]).commit();
    await box.transaction().flags([{ uid1: 1, uid2: messages }], "add", ["\\Draft"]).commit();
    await storage.close();
    const index = path.join(dir, "mail", "mailboxes", "INBOX", "dbox-Mails", "dovecot.index");
    // Flags after the last checkpoint: in the log only.
    storage = openStorage(location);
    box = await storage.openMailbox("INBOX");
    await box.transaction().flags([{ uid1: 10, uid2: 10 }], "add", ["\\Flagged", "$Label1"]).commit();
    await storage.close();
    expect(fs.existsSync(index + ".backup")).toBe(true);
    // One broken row in a late leaf: its uid out of order.
    const bytes = fs.readFileSync(index);
    expect(bytes.length).toBeGreaterThan(64 * 1024);
    const headerSize = bytes.readUInt32LE(4);
    bytes.writeUInt32LE(1, headerSize + (messages - 10) * bytes.readUInt32LE(8));
    fs.writeFileSync(index, bytes);

    storage = openStorage(location);
    await storage.forceResync("INBOX");
    box = await storage.openMailbox("INBOX");
    const state = box.state;
    const i = state.records.indexOfUid(10);
    expect(state.records.count).toBe(messages);
    const row = state.records.row(i);
    expect(row.bytes[row.offset + 4] & MailFlag.FLAGGED).toBe(MailFlag.FLAGGED);
    expect(keywordsAt(state, i)).toEqual(["$Label1"]);
    await storage.close();
  });
});
