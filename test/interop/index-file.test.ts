/**
 * dovecot.index against Dovecot 2.3: the codec reads every index file Dovecot
 * wrote and writes it back byte for byte; the fold of Dovecot's log gives the
 * bytes Dovecot wrote and the state `doveadm dump -t index` prints; and
 * Dovecot reads a dovecot.index the engine wrote and carries on from it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { LogTransaction } from "../../src/log/types.js";
import { readLog } from "../../src/log/view.js";
import { enterLogFile, markBackendSynced, replay } from "../../src/projections/apply.js";
import { readCheckpoint, writeCheckpoint } from "../../src/index-io/checkpoint-file.js";
import { decodeIndexFile, encodeIndexFile } from "../../src/projections/index-file.js";
import {
  extensionHeader,
  extensions,
  getHeader,
  highestModseq,
  keywordNames,
  messageCount,
  position,
  recordAt,
} from "../../src/projections/read.js";
import { IndexHeaderFlag } from "../../src/projections/base-header.js";
import { emptyIndexMap, type IndexMapState } from "../../src/projections/state.js";
import type { IndexDump } from "../helpers/doveadm-dump.js";
import { createOracle, describeInterop, MAIL_FORMATS, parseFlags, sampleMessage, type DovecotOracle, type MailFormat } from "../helpers/dovecot.js";

/** Makes Dovecot rewrite dovecot.index at the end of the command (index-file.md §9). */
const REWRITE = { mail_index_rewrite_min_log_bytes: "1", mail_index_rewrite_max_log_bytes: "1" };

/** Work that exercises flags, keywords, expunges and modseqs, with a checkpoint in the middle. */
async function workout(o: DovecotOracle): Promise<void> {
  for (let i = 1; i <= 5; i++) await o.save("INBOX", sampleMessage(i));
  await o.flags("add", "\\Seen \\Flagged $Label1 foo", "mailbox INBOX uid 1:3");
  await o.flags("remove", "foo \\Flagged", "mailbox INBOX uid 2");
  await o.flags("replace", "\\Answered bar", "mailbox INBOX uid 4");
  await o.expunge("mailbox INBOX uid 2");
  await o.run(["fetch", "modseq", "mailbox", "INBOX", "all"]); // enables the modseq extension
  await o.flags("add", "\\Draft", "mailbox INBOX uid 5");
  await o.flags("add", "\\Deleted", "mailbox INBOX uid 3", { extraSettings: REWRITE });
  // After the checkpoint: a log tail to catch up on.
  await o.save("INBOX", sampleMessage(6));
  await o.flags("add", "baz \\Seen", "mailbox INBOX uid 6");
}

function indexFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...indexFilesUnder(p));
    else if (/^dovecot\.(index|map\.index|list\.index)(\.backup)?$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

function readIndex(file: string): IndexMapState {
  return decodeIndexFile(new Uint8Array(fs.readFileSync(file)), file);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** Where two encodings differ, by header field or extension or record, for readable failures. */
function describeDifference(ours: IndexMapState, theirs: IndexMapState): unknown {
  const h1 = getHeader(ours) as unknown as Record<string, unknown>;
  const h2 = getHeader(theirs) as unknown as Record<string, unknown>;
  const header = Object.keys(h2).filter((k) => JSON.stringify(h1[k]) !== JSON.stringify(h2[k])).map((k) => `${k}: ${JSON.stringify(h1[k])} vs ${JSON.stringify(h2[k])}`);
  const exts = extensions(theirs).flatMap((e, i) => {
    const o = extensions(ours)[i];
    const hex = (x: Uint8Array) => Buffer.from(x).toString("hex");
    return o && o.name === e.name && o.resetId === e.resetId && o.recordOffset === e.recordOffset && o.recordSize === e.recordSize && hex(o.hdrData) === hex(e.hdrData)
      ? []
      : [`${i}: ${JSON.stringify({ ...o, hdrData: o && hex(o.hdrData) })} vs ${JSON.stringify({ ...e, hdrData: hex(e.hdrData) })}`];
  });
  const records: string[] = [];
  for (let seq = 1; seq <= Math.max(messageCount(ours), messageCount(theirs)); seq++) {
    const a = recordAt(ours, seq);
    const b = recordAt(theirs, seq);
    const show = (r: typeof a) => r && `${r.uid} ${r.flags} ${r.keywords} ${r.modseq}`;
    if (show(a) !== show(b)) records.push(`seq ${seq}: ${show(a)} vs ${show(b)}`);
  }
  return { header, exts, records };
}

/**
 * Our state as `doveadm dump -t index` prints it, in the parsed dump's terms.
 *
 * HAVE_DIRTY: ours is set exactly while a record is DIRTY. Dovecot clears it
 * only at the end of a sync that began with it set, so a dump that replays
 * mbox's "+DIRTY … -DIRTY" flag updates in one sync still shows it; when no
 * record of ours is dirty, that bit is not compared.
 */
function expectSameAsDump(state: IndexMapState, dump: IndexDump, opts: { tailOffset?: boolean } = {}): void {
  const h = getHeader(state);
  const dumpFlags = Number(dump.header["flags"]);
  const haveDirtyMayLinger = state.dirtyCount === 0 ? IndexHeaderFlag.HAVE_DIRTY : 0;
  const expected: Record<string, number | string> = {
    "version": `${h.majorVersion}.${h.minorVersion}`,
    "base header size": h.baseHeaderSize,
    "header size": h.headerSize,
    "record size": h.recordSize,
    "compat flags": h.compatFlags,
    "index id": h.indexId,
    "flags": h.flags | (dumpFlags & haveDirtyMayLinger),
    "uid validity": h.uidValidity,
    "next uid": h.nextUid,
    "messages count": h.messagesCount,
    "seen messages count": h.seenMessagesCount,
    "deleted messages count": h.deletedMessagesCount,
    "first recent uid": h.firstRecentUid,
    "first unseen uid lowwater": h.firstUnseenUidLowwater,
    "first deleted uid lowwater": h.firstDeletedUidLowwater,
    "log file seq": h.logFileSeq,
    "log file head offset": h.logFileHeadOffset,
    "log2 rotate time": h.log2RotateTime,
    "last temp file scan": h.lastTempFileScan,
    "day stamp": h.dayStamp,
  };
  if (opts.tailOffset ?? true) expected["log file tail offset"] = h.logFileTailOffset;
  h.dayFirstUid.forEach((uid, i) => (expected[`day first uid[${i}]`] = uid));
  const actual = Object.fromEntries(Object.keys(expected).map((k) => [k, dump.header[k]]));
  expect(actual).toEqual(expected);
  expect(dump.extensions.map((e) => [e.name, e.hdrSize, e.resetId, e.recordOffset, e.recordSize, e.recordAlign])).toEqual(
    extensions(state).map((e) => [e.name, e.hdrSize, e.resetId, e.recordOffset, e.recordSize, e.recordAlign]),
  );
  for (const e of dump.extensions) {
    if (e.headerHex !== undefined) expect(e.headerHex).toBe(Buffer.from(extensionHeader(extensions(state)[e.id])).toString("hex"));
  }
  expect(dump.keywords).toEqual([...keywordNames(state)]);
  expect(dump.records.length).toBe(messageCount(state));
  dump.records.forEach((r, i) => {
    const ours = recordAt(state, i + 1)!;
    expect([r.seq, r.uid, r.flags, r.keywords]).toEqual([ours.seq, ours.uid, ours.flags, ours.keywords]);
    if (r.modseq !== undefined) expect(BigInt(r.modseq)).toBe(ours.modseq);
    for (const [name, field] of Object.entries(r.ext)) {
      expect(field.hex, `${name} of uid ${r.uid}`).toBe(Buffer.from(ours.ext(name)!).toString("hex"));
    }
  });
}

/** The transactions of a log read from scratch that end at or before `end`. */
function upTo(txs: LogTransaction[], end: { fileSeq: number; offset: number }): LogTransaction[] {
  return txs.filter((t) => t.end.fileSeq < end.fileSeq || (t.end.fileSeq === end.fileSeq && t.end.offset <= end.offset));
}

describeInterop("dovecot.index against Dovecot 2.3", () => {
  const oracles = new Map<MailFormat, DovecotOracle>();
  beforeAll(async () => {
    await Promise.all(
      MAIL_FORMATS.map(async (format) => {
        const o = createOracle(format);
        oracles.set(format, o);
        await workout(o);
      }),
    );
  }, 120_000);
  afterAll(async () => {
    for (const o of oracles.values()) await o.cleanup();
  });

  it.each(MAIL_FORMATS)("%s: every index file Dovecot wrote decodes and re-encodes byte for byte", (format) => {
    const files = indexFilesUnder(oracles.get(format)!.root);
    expect(files.some((f) => f.endsWith("/dovecot.index"))).toBe(true);
    for (const file of files) {
      const bytes = new Uint8Array(fs.readFileSync(file));
      const state = decodeIndexFile(bytes, file);
      expect(sameBytes(encodeIndexFile(state), bytes), file).toBe(true);
    }
  });

  it.each(MAIL_FORMATS)("%s: the fold of Dovecot's log up to its checkpoint gives Dovecot's dovecot.index bytes", (format) => {
    const dir = oracles.get(format)!.mailboxIndexDir("INBOX");
    const theirs = readIndex(path.join(dir, "dovecot.index"));
    const log = readLog(path.join(dir, "dovecot.index"));
    expect(log.fromScratch).toBe(true);
    const folded = replay(upTo(log.transactions, position(theirs)), emptyIndexMap({ indexId: log.headers[0].indexId }));
    expect(position(folded)).toEqual(position(theirs));
    const ours = markBackendSynced(folded);
    const same = sameBytes(encodeIndexFile(ours), encodeIndexFile(theirs));
    expect(same ? "identical" : describeDifference(ours, theirs)).toBe("identical");
  });

  it.each(MAIL_FORMATS)("%s: a full replay and Dovecot's checkpoint plus the log tail both match doveadm dump -t index", async (format) => {
    const o = oracles.get(format)!;
    const dir = o.mailboxIndexDir("INBOX");
    const prefix = path.join(dir, "dovecot.index");
    const dump = await o.dumpIndex(dir);
    const log = readLog(prefix);
    const full = replay(log.transactions, emptyIndexMap({ indexId: log.headers[0].indexId }));
    const checkpoint = readCheckpoint(prefix)!;
    const tail = readLog(prefix, position(checkpoint));
    expect(tail.transactions.length).toBeGreaterThan(0);
    const resumed = replay(tail.transactions, checkpoint);
    // Dovecot's checkpoint says the backend synced up to its head; a replay from scratch
    // only knows the tail offsets the log carries.
    expectSameAsDump(full, dump, { tailOffset: false });
    expectSameAsDump(resumed, dump);
    expect(highestModseq(full)).toBe(log.endModseq);
    const status = await o.mailboxStatus("messages uidnext highestmodseq", "INBOX");
    expect([Number(status.messages), Number(status.uidnext), BigInt(status.highestmodseq)]).toEqual([
      messageCount(full),
      getHeader(full).nextUid,
      highestModseq(full),
    ]);
  });

  it.each(MAIL_FORMATS)("%s: Dovecot reads a dovecot.index the engine wrote, and the engine follows Dovecot's next changes", async (format) => {
    const o = oracles.get(format)!;
    const dir = o.mailboxIndexDir("INBOX");
    const prefix = path.join(dir, "dovecot.index");
    const log = readLog(prefix);
    const ours = markBackendSynced(replay(log.transactions, emptyIndexMap({ indexId: log.headers[0].indexId })));
    writeCheckpoint(prefix, ours, { backup: format === "sdbox" || format === "mdbox" });
    await o.chownRoot();
    expect(sameBytes(fs.readFileSync(prefix), encodeIndexFile(ours))).toBe(true);

    expectSameAsDump(ours, await o.dumpIndex(dir));
    const rows = await o.fetch("uid flags modseq", ["mailbox", "INBOX", "all"]);
    expect(rows.map((r) => [Number(r.uid), parseFlags(r.flags).sort(), BigInt(r.modseq)])).toEqual(
      Array.from({ length: messageCount(ours) }, (_, i) => {
        const r = recordAt(ours, i + 1)!;
        const names = [["\\Answered", 1], ["\\Flagged", 2], ["\\Deleted", 4], ["\\Seen", 8], ["\\Draft", 16]] as const;
        return [r.uid, [...names.filter(([, bit]) => r.flags & bit).map(([n]) => n), ...r.keywords].sort(), r.modseq];
      }),
    );

    await o.flags("add", "\\Flagged later", "mailbox INBOX uid 1", { extraSettings: REWRITE });
    await o.save("INBOX", sampleMessage(7));
    o.assertNoStderrProblems([/Rebuilding index/]);
    const tail = readLog(prefix, position(ours));
    const followed = replay(tail.transactions, ours);
    expectSameAsDump(followed, await o.dumpIndex(dir), { tailOffset: false });
    expect(recordAt(followed, 1)!.keywords).toContain("later");
  });
});

describeInterop("dovecot.index across Dovecot's log rotation", () => {
  let o: DovecotOracle;
  let prefix: string;
  let before: Uint8Array;
  beforeAll(async () => {
    o = createOracle("sdbox");
    for (let i = 1; i <= 3; i++) await o.save("INBOX", sampleMessage(i));
    await o.run(["fetch", "modseq", "mailbox", "INBOX", "all"]);
    await o.flags("add", "\\Seen kw1", "mailbox INBOX uid 1", { extraSettings: REWRITE });
    prefix = path.join(o.mailboxIndexDir("INBOX"), "dovecot.index");
    before = new Uint8Array(fs.readFileSync(prefix));
    await o.flags("add", "\\Flagged", "mailbox INBOX uid 2");
    await o.save("INBOX", sampleMessage(4));
    await o.flags("add", "kw2", "mailbox INBOX uid 3", { extraSettings: { ...REWRITE, mail_index_log_rotate_max_size: "1" } });
    await o.save("INBOX", sampleMessage(5));
    await o.expunge("mailbox INBOX uid 2");
  }, 60_000);
  afterAll(async () => o?.cleanup());

  it("an older checkpoint plus .log.2 and .log matches doveadm dump, and meets Dovecot's rotation checkpoint on the way", async () => {
    const old = decodeIndexFile(before, "before");
    const tail = readLog(prefix, position(old));
    expect(new Set(tail.transactions.map((t) => t.position.fileSeq)).size).toBe(2);
    const resumed = replay(tail.transactions, old, tail.headers);
    expectSameAsDump(resumed, await o.dumpIndex(path.dirname(prefix)), { tailOffset: false });

    // Dovecot rewrote dovecot.index when it rotated, pointing at the new file's start:
    // the fold to the end of .log.2, then entering .log, gives the same bytes (log2_rotate_time
    // included, which only the new file's create_stamp tells).
    const rotated = readIndex(prefix);
    expect(position(rotated)).toEqual({ fileSeq: tail.headers[1].fileSeq, offset: tail.headers[1].hdrSize });
    const oldFile = tail.transactions.filter((t) => t.position.fileSeq === tail.headers[0].fileSeq);
    const ours = enterLogFile(markBackendSynced(replay(oldFile, old)), tail.headers[1]);
    const same = sameBytes(encodeIndexFile(ours), encodeIndexFile(rotated));
    expect(same ? "identical" : describeDifference(ours, rotated)).toBe("identical");
  });
});

describeInterop("the mdbox map index (the same file format, refcounts by EXT_ATOMIC_INC)", () => {
  let o: DovecotOracle;
  let indexPath: string;
  beforeAll(async () => {
    o = createOracle("mdbox", { settings: REWRITE });
    await o.mailboxCreate("Other");
    for (let i = 1; i <= 4; i++) await o.save("INBOX", sampleMessage(i));
    await o.copy("Other", "mailbox INBOX uid 1:2"); // map refcounts +1 (EXT_ATOMIC_INC on "ref")
    await o.expunge("mailbox INBOX uid 1"); // refcount -1
    await o.purge();
    // Only a rebuild makes Dovecot write dovecot.map.index; what follows is its log tail.
    await o.forceResync("*");
    await o.copy("Other", "mailbox INBOX uid 3");
    await o.expunge("mailbox Other uid 2");
    await o.save("Other", sampleMessage(5));
    indexPath = path.join(o.storageDir(), "dovecot.map.index");
  }, 60_000);
  afterAll(async () => o?.cleanup());

  it("decodes and re-encodes byte for byte; checkpoint + tail and a full replay match doveadm dump", async () => {
    const bytes = new Uint8Array(fs.readFileSync(indexPath));
    const checkpoint = decodeIndexFile(bytes, indexPath);
    expect(sameBytes(encodeIndexFile(checkpoint), bytes)).toBe(true);
    const dump = await o.dumpIndex(indexPath);
    const tail = readLog(indexPath, position(checkpoint));
    expect(tail.transactions.flatMap((t) => t.entries).some((e) => e.record.type === "ext-atomic-inc")).toBe(true);
    // (No replay from scratch here: the rebuild's fsck set the FSCKD flag and the low-water
    // marks in dovecot.map.index, facts the log does not carry.)
    expectSameAsDump(replay(tail.transactions, checkpoint, tail.headers), dump);
  });
});
