import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { IndexWriter } from "../../../src/index-io/writer.js";
import { loadState } from "../../../src/index-io/load-state.js";
import { checkpointReading, writeCheckpoint } from "../../../src/index-io/checkpoint-file.js";
import { searchUids } from "../../../src/api/search.js";
import { MailFlag, type LogRecord } from "../../../src/log/types.js";
import { encodeIndexFile } from "../../../src/projections/index-file.js";
import { LEAF_RECORDS } from "../../../src/projections/record-store.js";
import { IndexCorruptedError } from "../../../src/shared/errors.js";
import { HDR, R } from "../projections/log-builder.js";

// Past readCheckpoint's 64 KiB, under which a file is read whole: 8-byte records.
const N = 10 * LEAF_RECORDS;
const appendAll: LogRecord = {
  type: "append", external: false, sync: false,
  messages: Array.from({ length: N }, (_, i) => ({ uid: i + 1, flags: i % 3 === 0 ? MailFlag.SEEN : 0 })),
};
const flagged = (uid: number): LogRecord => ({
  type: "flag-update", external: false, sync: false, updates: [{ uid1: uid, uid2: uid, addFlags: MailFlag.FLAGGED, removeFlags: 0, modseqIncFlag: 0 }],
});

describe("loadState over a dovecot.index read lazily", () => {
  let dir: string;
  let prefix: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-load-lazy-"));
    prefix = path.join(dir, "dovecot.index");
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** N messages logged, then `tail`; dovecot.index as of the N messages, its record `broken` given uid 1. */
  async function store(broken: number, tail: LogRecord[]): Promise<number> {
    const writer = IndexWriter.open(prefix, { create: {} });
    await writer.sync(async (s) => {
      await s.append([[R.headerU32(HDR.uidValidity, 1), appendAll]]);
    });
    const bytes = encodeIndexFile(writer.state);
    for (const r of tail) {
      await writer.sync(async (s) => {
        await s.append([[r]]);
      });
    }
    await writer.close();
    const headerSize = new DataView(bytes.buffer).getUint32(4, true);
    const at = headerSize + broken * writer.state.records.recordSize;
    new DataView(bytes.buffer).setUint32(at, 1, true);
    fs.writeFileSync(prefix, bytes);
    return at;
  }

  it("starts again from the log when folding its tail reads a broken record, as when the open found it", async () => {
    const broken = 4 * LEAF_RECORDS + 2;
    await store(broken, [flagged(broken + 1)]);
    const state = loadState(prefix);
    expect(state.records.indexOfUid(broken + 1)).toBe(broken);
    fs.unlinkSync(prefix);
    expect(encodeIndexFile(state)).toEqual(encodeIndexFile(loadState(prefix)));
  });

  it("throws IndexCorruptedError naming file and offset where a broken record the fold did not touch is read", async () => {
    const broken = 4 * LEAF_RECORDS + 2;
    const at = await store(broken, [flagged(3)]);
    const state = loadState(prefix);
    expect(state.records.uidAt(2)).toBe(3);
    let err: unknown;
    try {
      state.records.uidAt(broken);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(IndexCorruptedError);
    expect((err as IndexCorruptedError).path).toBe(prefix);
    expect((err as IndexCorruptedError).offset).toBe(at);
  });

  it("gives the same answers and writes the same files as reading dovecot.index whole", async () => {
    await store(N - 1, [flagged(7)]);
    // dovecot.index intact again (the store() above broke one of its records): written from a fresh log fold.
    fs.unlinkSync(prefix);
    const writer = IndexWriter.open(prefix, {});
    await writer.close();
    writeCheckpoint(prefix, loadState(prefix), { fsync: false });
    const run = async (lazyMinBytes: number) => {
      const copy = fs.mkdtempSync(path.join(dir, "copy-"));
      for (const f of fs.readdirSync(dir)) if (f.startsWith("dovecot.index")) fs.copyFileSync(path.join(dir, f), path.join(copy, f));
      const saved = checkpointReading.lazyMinBytes;
      checkpointReading.lazyMinBytes = lazyMinBytes;
      try {
        const w = IndexWriter.open(path.join(copy, "dovecot.index"), {});
        // Status first (header and counters only), then a flag one, then what reads every row.
        const status = [w.state.header.nextUid, w.state.header.seenMessagesCount, w.state.records.count];
        await w.sync(async (s) => {
          await s.append([[flagged(5 * LEAF_RECORDS + 3)]]);
        });
        const unseen = searchUids(w.state, [{ type: "flag", flag: MailFlag.SEEN, set: false }]).length;
        await w.close();
        const files = Object.fromEntries(fs.readdirSync(copy).sort().map((f) => [f, fs.readFileSync(path.join(copy, f))]));
        return { status, unseen, files };
      } finally {
        checkpointReading.lazyMinBytes = saved;
      }
    };
    const lazy = await run(0);
    const whole = await run(Infinity);
    expect(lazy.status).toEqual(whole.status);
    expect(lazy.unseen).toBe(N - Math.ceil(N / 3));
    expect(lazy.unseen).toBe(whole.unseen);
    expect(Object.keys(lazy.files)).toEqual(Object.keys(whole.files));
    for (const [name, bytes] of Object.entries(lazy.files)) expect(Buffer.compare(bytes, whole.files[name]), name).toBe(0);
  });
});
