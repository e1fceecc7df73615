import { describe, expect, it } from "vitest";
import { LogCorruptedError } from "../../../src/shared/errors.js";
import { applyEntry, applyTransaction, markBackendSynced, replay } from "../../../src/projections/apply.js";
import { getHeader, position } from "../../../src/projections/read.js";
import { emptyIndexMap } from "../../../src/projections/state.js";
import { HDR, LogBuilder, R, u32 } from "./log-builder.js";

describe("HEADER_UPDATE", () => {
  it("patches base header fields (uid_validity, last_temp_file_scan)", () => {
    const b = new LogBuilder();
    const s = applyTransaction(emptyIndexMap(), b.tx(R.headerU32(HDR.uidValidity, 1234), R.headerU32(HDR.lastTempFileScan, 99)));
    expect(getHeader(s).uidValidity).toBe(1234);
    expect(getHeader(s).lastTempFileScan).toBe(99);
  });

  it("never lowers next_uid (a lower value is ignored, a higher one taken)", () => {
    const b = new LogBuilder();
    let s = applyTransaction(emptyIndexMap(), b.tx(R.append([5])));
    expect(applyEntry(s, b.entry(R.headerU32(HDR.nextUid, 3)))).toBe(s);
    s = applyTransaction(s, b.tx(R.headerU32(HDR.nextUid, 10)));
    expect(getHeader(s).nextUid).toBe(10);
  });

  it("rejects patches outside the base header or of its structural fields", () => {
    const b = new LogBuilder();
    const s = applyTransaction(emptyIndexMap(), b.tx(R.append([1])));
    expect(() => applyEntry(s, b.entry(R.header(118, [0, 0, 0, 0])))).toThrow(/Header update outside range/);
    expect(() => applyEntry(s, b.entry(R.headerU32(HDR.messagesCount, 5)))).toThrow(LogCorruptedError);
    expect(() => applyEntry(s, b.entry(R.headerU32(HDR.recordSize, 16)))).toThrow(/recordSize/);
    // Writing the value it already has is fine.
    expect(applyEntry(s, b.entry(R.headerU32(HDR.messagesCount, 1)))).toBe(s);
  });
});

describe("log_file_tail_offset (transaction-log.md §7)", () => {
  it("only follows EXTERNAL tail updates; the applier itself never patches the field", () => {
    const b = new LogBuilder();
    let s = applyTransaction(emptyIndexMap(), b.tx(R.append([1])));
    s = applyTransaction(s, b.tx(R.headerU32(HDR.tailOffset, b.offset + 16, false)));
    expect(getHeader(s).logFileTailOffset).toBe(0);
    const end = b.offset + 16;
    s = applyTransaction(s, b.tx(R.headerU32(HDR.tailOffset, end)));
    expect(getHeader(s).logFileTailOffset).toBe(end);
  });

  it("ignores a lower value and rejects one past the record's own end", () => {
    const b = new LogBuilder();
    let s = applyTransaction(emptyIndexMap(), b.tx(R.append([1])));
    const end = b.offset + 16;
    s = applyTransaction(s, b.tx(R.headerU32(HDR.tailOffset, end)));
    expect(getHeader(s).logFileTailOffset).toBe(end);
    s = applyTransaction(s, b.tx(R.headerU32(HDR.tailOffset, 44)));
    expect(getHeader(s).logFileTailOffset).toBe(end);
    const tx = b.tx(R.headerU32(HDR.tailOffset, b.offset + 17));
    expect(() => applyTransaction(s, tx)).toThrow(/goes past sync offset/);
  });

  it("steps over EXTERNAL records (boundaries included) that start at the tail, stopping at an internal one", () => {
    const b = new LogBuilder();
    let s = applyTransaction(emptyIndexMap(), b.tx(R.append([1, 2])));
    // Like Dovecot's flags add: internal flag update, then the syncing tail update past it.
    s = applyTransaction(s, b.tx(R.flags(1, 1, 8, 0)));
    const tailTx = b.tx(R.headerU32(HDR.tailOffset, b.offset + 16));
    s = applyTransaction(s, tailTx);
    expect(getHeader(s).logFileTailOffset).toBe(tailTx.end.offset);
    // A framed, all-EXTERNAL transaction right at the tail: boundary and records are skipped.
    const ext = b.tx(R.append([3]), R.headerU32(HDR.lastTempFileScan, 5));
    s = applyTransaction(s, ext);
    expect(getHeader(s).logFileTailOffset).toBe(ext.end.offset);
    // Framed transaction whose first record is internal: only the boundary is skipped.
    const mixed = b.tx(R.intro({ name: "modseq", hdrSize: 16, recordSize: 8, recordAlign: 8 }, false), R.extHdr(0, new Array(16).fill(0), false));
    s = applyTransaction(s, mixed);
    expect(getHeader(s).logFileTailOffset).toBe(mixed.entries[0].position.offset);
    // Further external records no longer touch the tail.
    s = applyTransaction(s, b.tx(R.append([4])));
    expect(getHeader(s).logFileTailOffset).toBe(mixed.entries[0].position.offset);
  });

  it("starts over at 0 in a new log file, and the position follows the transactions", () => {
    const b = new LogBuilder();
    let s = applyTransaction(emptyIndexMap(), b.tx(R.append([1])));
    s = applyTransaction(s, b.tx(R.headerU32(HDR.tailOffset, b.offset + 16)));
    expect(getHeader(s).logFileTailOffset).toBeGreaterThan(0);
    b.rotate();
    const tx = b.tx(R.flags(1, 1, 2, 0));
    s = applyTransaction(s, tx);
    expect(getHeader(s).logFileSeq).toBe(3);
    expect(getHeader(s).logFileTailOffset).toBe(0);
    expect(position(s)).toEqual(tx.end);
  });

  it("markBackendSynced moves the tail to the head", () => {
    const b = new LogBuilder();
    const s = markBackendSynced(replay([b.tx(R.append([1])), b.tx(R.flags(1, 1, 8, 0))], emptyIndexMap()));
    expect(getHeader(s).logFileTailOffset).toBe(getHeader(s).logFileHeadOffset);
  });
});

describe("u32 helper", () => {
  it("is little-endian", () => expect(u32(0x01020304)).toEqual([4, 3, 2, 1]));
});
