import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MailFlag } from "../../../src/log/types.js";
import { replay } from "../../../src/projections/apply.js";
import { readCheckpoint, writeCheckpoint } from "../../../src/index-io/checkpoint-file.js";
import { decodeIndexFile, encodeIndexFile } from "../../../src/projections/index-file.js";
import { IndexHeaderFlag } from "../../../src/projections/base-header.js";
import { LEAF_RECORDS } from "../../../src/projections/record-store.js";
import { emptyIndexMap, type IndexMapState } from "../../../src/projections/state.js";
import { IndexCorruptedError } from "../../../src/shared/errors.js";
import { HDR, LogBuilder, R } from "./log-builder.js";

let dir: string;
let file: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "checkpoint-lazy-"));
  file = path.join(dir, "dovecot.index");
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** `n` messages, uids 1..n (every third \Seen), in 8-byte records. */
function state(n: number, firstUid = 1): IndexMapState {
  const b = new LogBuilder();
  const msgs = Array.from({ length: n }, (_, i): [number, number] => [firstUid + i, i % 3 === 0 ? MailFlag.SEEN : 0]);
  return replay([b.tx(R.headerU32(HDR.uidValidity, 1), R.append(msgs))], emptyIndexMap({ indexId: 5 }));
}

const N = 5 * LEAF_RECORDS + 100;
const lazily = (p = file) => readCheckpoint(p, { lazy: true, lazyMinBytes: 0 })!;
const u32At = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getUint32(at, true);

function writeBytes(bytes: Uint8Array, p = file): void {
  fs.writeFileSync(p, bytes);
}

/** The file's bytes with u32 `value` at `at`, and where record `index` starts. */
function withU32(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setUint32(at, value, true);
  return copy;
}
const recordAtOffset = (bytes: Uint8Array, index: number) => u32At(bytes, 4) + index * u32At(bytes, 8);

function thrown(fn: () => unknown): IndexCorruptedError {
  try {
    fn();
  } catch (e) {
    if (e instanceof IndexCorruptedError) return e;
    throw e;
  }
  throw new Error("expected IndexCorruptedError");
}

describe("dovecot.index read lazily", () => {
  it("gives the same state and bytes as the eager decoder, rows read only when touched", () => {
    const bytes = encodeIndexFile(state(N));
    writeBytes(bytes);
    const lazy = lazily();
    expect(lazy.header).toEqual(decodeIndexFile(bytes, file).header);
    expect(lazy.records.indexOfUid(3 * LEAF_RECORDS + 7)).toBe(3 * LEAF_RECORDS + 6);
    expect(lazy.records.uidAt(N - 1)).toBe(N);
    expect(encodeIndexFile(lazy)).toEqual(bytes);
  });

  it("names file and offset of a uid out of order in a leaf read after the open", () => {
    const bytes = encodeIndexFile(state(N));
    const index = 4 * LEAF_RECORDS + 10;
    const at = recordAtOffset(bytes, index);
    writeBytes(withU32(bytes, at, 3));
    // The open reads the header only: the broken row is found when its leaf is read.
    const lazy = lazily();
    expect(lazy.records.uidAt(5)).toBe(6);
    const err = thrown(() => lazy.records.uidAt(index));
    expect(err.path).toBe(file);
    expect(err.offset).toBe(at);
    expect(err.message).toMatch(new RegExp(`record ${index + 1} has uid 3 after ${index}`));
    // Read again, it is still refused.
    expect(thrown(() => lazy.records.forEachChunk(() => {})).offset).toBe(at);
  });

  it("compares a leaf with the nearest leaves read before it on either side, whatever the order", () => {
    const bytes = encodeIndexFile(state(N));
    // Leaf 3's last uid made larger than leaf 4's first: each leaf ascends on its own, only a check
    // of leaf 3 against leaf 4 (read first) sees it.
    const last = 4 * LEAF_RECORDS - 1;
    const big = 4 * LEAF_RECORDS + 500;
    writeBytes(withU32(bytes, recordAtOffset(bytes, last), big));
    const lazy = lazily();
    expect(lazy.records.uidAt(4 * LEAF_RECORDS + 1)).toBe(4 * LEAF_RECORDS + 2);
    const err = thrown(() => lazy.records.uidAt(last - 5));
    expect([err.path, err.offset]).toEqual([file, recordAtOffset(bytes, 4 * LEAF_RECORDS)]);
    expect(err.message).toMatch(new RegExp(`record ${4 * LEAF_RECORDS + 1} has uid ${4 * LEAF_RECORDS + 1} after ${big}`));
  });

  it("checks the seen counter once every row has been read", () => {
    const bytes = encodeIndexFile(state(N));
    writeBytes(withU32(bytes, 40, u32At(bytes, 40) + 1));
    const lazy = lazily();
    expect(lazy.records.uidAt(0)).toBe(1);
    const err = thrown(() => encodeIndexFile(lazy));
    expect([err.path, err.offset]).toEqual([file, 40]);
    expect(err.message).toMatch(/seen_messages_count/);
  });

  it("refuses a DIRTY row under a header without HAVE_DIRTY, and reads every row on open when it is set", () => {
    const bytes = encodeIndexFile(state(N));
    const index = 2 * LEAF_RECORDS + 3;
    const dirty = bytes.slice();
    dirty[recordAtOffset(bytes, index) + 4] |= MailFlag.DIRTY;
    writeBytes(dirty);
    const err = thrown(() => lazily().records.uidAt(index));
    expect([err.path, err.offset]).toEqual([file, recordAtOffset(bytes, index)]);
    dirty[20] |= IndexHeaderFlag.HAVE_DIRTY;
    writeBytes(dirty);
    expect(lazily().dirtyCount).toBe(1);
  });

  it("reads the rows of the file it opened when another process renames a new dovecot.index over it", () => {
    writeBytes(encodeIndexFile(state(N)));
    const lazy = lazily();
    // Another writer replaces the file (as Dovecot and writeCheckpoint do: a new file renamed over it).
    const other = path.join(dir, "other");
    writeBytes(encodeIndexFile(state(N, 100001)), other);
    fs.renameSync(other, file);
    expect(lazy.records.uidAt(3 * LEAF_RECORDS)).toBe(3 * LEAF_RECORDS + 1);
    expect(encodeIndexFile(lazy)).toEqual(encodeIndexFile(state(N)));
    expect(lazily().records.uidAt(0)).toBe(100001);
  });

  it("closes the file once every row has been read", () => {
    writeBytes(encodeIndexFile(state(N)));
    const open = () => fs.readdirSync("/proc/self/fd").filter((fd) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`) === file;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return false; // the readdir's own descriptor, gone
        throw err;
      }
    }).length;
    const lazy = lazily();
    expect(open()).toBe(1);
    writeCheckpoint(path.join(dir, "copy"), lazy, { fsync: false });
    expect(open()).toBe(0);
  });
});
