import { describe, expect, it } from "vitest";
import { LogCorruptedError } from "../../../src/shared/errors.js";
import { applyEntry, applyTransaction, replay } from "../../../src/projections/apply.js";
import { extension, extensionHeader, extensions, getHeader, lookupUid } from "../../../src/projections/read.js";
import { emptyIndexMap, type IndexMapState } from "../../../src/projections/state.js";
import { LogBuilder, R } from "./log-builder.js";

const cache = (resetId = 0) => R.intro({ name: "cache", resetId, recordSize: 4, recordAlign: 4 });

function sdbox(b: LogBuilder): IndexMapState {
  // What a new sdbox mailbox's log starts with (transaction-log.md §1, observed).
  return replay(
    [
      b.tx(R.intro({ name: "dbox-hdr", hdrSize: 24, flags: 0 }, false)),
      b.tx(R.extHdr(0, new Array(24).fill(7), false)),
      b.tx(R.intro({ name: "hdr-pop3-uidl", hdrSize: 4 }), R.extHdr(0, [0, 0, 0, 0])),
      b.tx(cache(), R.extReset(1700)),
      b.tx(R.append([1, 2, 3])),
    ],
    emptyIndexMap(),
  );
}

function error(fn: () => unknown): LogCorruptedError {
  try {
    fn();
  } catch (e) {
    if (e instanceof LogCorruptedError) return e;
    throw e;
  }
  throw new Error("expected a LogCorruptedError");
}

describe("EXT_INTRO", () => {
  it("appends extensions in intro order (their ext_ids) and lays records out like Dovecot", () => {
    const b = new LogBuilder();
    const s = sdbox(b);
    expect(extensions(s).map((e) => [e.name, e.hdrSize, e.resetId, e.recordOffset, e.recordSize, e.recordAlign])).toEqual([
      ["dbox-hdr", 24, 0, 0, 0, 0],
      ["hdr-pop3-uidl", 4, 0, 0, 0, 0],
      ["cache", 0, 1700, 8, 4, 4],
    ]);
    expect(getHeader(s).recordSize).toBe(12);
    expect(getHeader(s).headerSize).toBe(232);
    // The lone intro and the lone header update are two transactions: the current extension survives.
    expect([...extensionHeader(extension(s, "dbox-hdr")!)]).toEqual(new Array(24).fill(7));
  });

  it("counts a header-only extension's alignment: hdr-vsize takes record_size 12 → 16, cache stays at 8", () => {
    const b = new LogBuilder();
    let s = sdbox(b);
    s = applyTransaction(s, b.tx(cache(1700), R.extRec(4, [[2, [0x84, 1, 0, 0]]])));
    s = applyTransaction(s, b.tx(R.intro({ name: "hdr-vsize", hdrSize: 16, recordAlign: 8 }), R.extHdr(0, new Array(16).fill(0))));
    expect(getHeader(s).recordSize).toBe(16);
    expect(extension(s, "cache")!.recordOffset).toBe(8);
    expect([...lookupUid(s, 2)!.ext("cache")!]).toEqual([0x84, 1, 0, 0]);
  });

  it("selects by ext_id (name ignored) and rejects unknown ids, missing names and 'keywords'", () => {
    const b = new LogBuilder();
    const s = sdbox(b);
    const byId = applyTransaction(s, b.tx(R.intro({ extId: 2, resetId: 1700, recordSize: 4, recordAlign: 4 }), R.extRec(4, [[1, [9, 0, 0, 0]]])));
    expect([...lookupUid(byId, 1)!.ext("cache")!]).toEqual([9, 0, 0, 0]);
    const e = b.entry(R.intro({ extId: 3, recordSize: 4, recordAlign: 4 }));
    const err = error(() => applyEntry(s, e));
    expect(err.message).toContain("unknown id 3");
    expect(err.offset).toBe(e.position.offset);
    expect(error(() => applyEntry(s, b.entry(R.intro({ name: "", recordSize: 4, recordAlign: 4 })))).message).toContain("without id or name");
    expect(error(() => applyEntry(s, b.entry(R.intro({ name: "keywords", recordSize: 2, recordAlign: 1 })))).message).toContain("keywords");
  });

  it("rejects broken sizes and names", () => {
    const b = new LogBuilder();
    const s = sdbox(b);
    for (const bad of [
      { name: "x" },
      { name: "x", recordSize: 4, recordAlign: 0 },
      { name: "x", recordSize: 40000, recordAlign: 4 },
      { name: "bad/name", hdrSize: 4 },
      { name: "x".repeat(64), hdrSize: 4 },
    ]) {
      expect(error(() => applyEntry(s, b.entry(R.intro(bad)))).message).toContain("Broken extension introduction");
    }
  });

  it("resizes on a matching reset_id: grows with zeros, honours NO_SHRINK, shrinks without it", () => {
    const b = new LogBuilder();
    let s = applyTransaction(emptyIndexMap(), b.tx(R.intro({ name: "x", hdrSize: 12 }), R.extHdr(0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])));
    s = applyTransaction(s, b.tx(R.intro({ name: "x", hdrSize: 20 })));
    expect(extension(s, "x")!.hdrSize).toBe(20);
    expect([...extensionHeader(extension(s, "x")!)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0, 0, 0, 0, 0, 0]);
    // NO_SHRINK (flags 1): a smaller padded size is ignored.
    expect(applyEntry(s, b.entry(R.intro({ name: "x", hdrSize: 4, flags: 1 })))).toEqual(
      expect.objectContaining({ extensions: s.extensions }),
    );
    // Without NO_SHRINK the header is cut at the new padded size (8): bytes 4..7 survive as padding.
    s = applyTransaction(s, b.tx(R.intro({ name: "x", hdrSize: 4, flags: 0 })));
    expect(extension(s, "x")!.hdrSize).toBe(4);
    expect([...extension(s, "x")!.hdrData]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(getHeader(s).headerSize).toBe(120 + 24 + 8); // 16-byte ext header + "x" padded to 24, data padded to 8
  });

  it("grows a record field and moves data when the layout changes", () => {
    const b = new LogBuilder();
    let s = sdbox(b);
    s = applyTransaction(s, b.tx(cache(1700), R.extRec(4, [[1, [1, 2, 3, 4]], [3, [5, 6, 7, 8]]])));
    s = applyTransaction(s, b.tx(R.intro({ name: "big", recordSize: 8, recordAlign: 8 }), R.extRec(8, [[3, [1, 1, 1, 1, 1, 1, 1, 1]]])));
    expect(getHeader(s).recordSize).toBe(24);
    expect(extension(s, "big")!.recordOffset).toBe(8);
    expect(extension(s, "cache")!.recordOffset).toBe(16);
    expect([...lookupUid(s, 3)!.ext("cache")!]).toEqual([5, 6, 7, 8]);
    expect([...lookupUid(s, 3)!.ext("big")!]).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    expect([...lookupUid(s, 1)!.ext("cache")!]).toEqual([1, 2, 3, 4]);
  });
});

describe("EXT_RESET and stale reset ids", () => {
  it("ignores header/record updates after an intro with another reset_id, but honours a reset", () => {
    const b = new LogBuilder();
    let s = sdbox(b);
    s = applyTransaction(s, b.tx(cache(1700), R.extRec(4, [[1, [1, 0, 0, 0]]])));
    // A writer that still believes in reset_id 1699:
    const stale = b.tx(cache(1699), R.extRec(4, [[1, [2, 0, 0, 0]]]), R.atomicInc([[1, 5]]));
    const after = applyTransaction(s, stale);
    expect([...lookupUid(after, 1)!.ext("cache")!]).toEqual([1, 0, 0, 0]);
    const sel = applyEntry(s, b.entry(cache(1699)));
    expect(applyEntry(sel, b.entry(R.extRec(4, [[1, [3, 0, 0, 0]]])))).toBe(sel);
    // The reset applies even so: new reset_id, fields zeroed.
    s = applyTransaction(s, b.tx(cache(1699), R.extReset(1800)));
    expect(extension(s, "cache")!.resetId).toBe(1800);
    expect([...lookupUid(s, 1)!.ext("cache")!]).toEqual([0, 0, 0, 0]);
  });

  it("keeps data with preserve_data", () => {
    const b = new LogBuilder();
    let s = sdbox(b);
    s = applyTransaction(s, b.tx(cache(1700), R.extRec(4, [[1, [1, 0, 0, 0]]]), R.extReset(1900, 1)));
    expect(extension(s, "cache")!.resetId).toBe(1900);
    expect([...lookupUid(s, 1)!.ext("cache")!]).toEqual([1, 0, 0, 0]);
  });

  it("needs an intro first", () => {
    const b = new LogBuilder();
    const s = applyTransaction(emptyIndexMap(), b.tx(R.append([1])));
    expect(error(() => applyEntry(s, b.entry(R.extReset(1)))).message).toContain("Extension reset without intro prefix");
    expect(error(() => applyEntry(s, b.entry(R.extHdr(0, [1])))).message).toContain("without intro prefix");
    expect(error(() => applyEntry(s, b.entry(R.extRec(4, [[1, [1, 0, 0, 0]]])))).message).toContain("without intro prefix");
    expect(error(() => applyEntry(s, b.entry(R.atomicInc([[1, 1]])))).message).toContain("without intro prefix");
  });
});

describe("EXT_HDR_UPDATE(32)", () => {
  it("patches the current extension's header (16- and 32-bit forms) and rejects out-of-range patches", () => {
    const b = new LogBuilder();
    let s = sdbox(b);
    s = applyTransaction(s, b.tx(R.intro({ extId: 0, hdrSize: 24 }), R.extHdr(20, [1, 2]), R.extHdr32(22, [3, 4])));
    expect([...extensionHeader(extension(s, "dbox-hdr")!)].slice(18)).toEqual([7, 7, 1, 2, 3, 4]);
    const sel = applyEntry(s, b.entry(R.intro({ extId: 1, hdrSize: 4 })));
    expect(error(() => applyEntry(sel, b.entry(R.extHdr(2, [1, 2, 3])))).message).toContain("outside header size");
    // Writing bytes already there changes nothing.
    expect(applyEntry(sel, b.entry(R.extHdr(0, [0, 0])))).toBe(sel);
  });
});

describe("EXT_REC_UPDATE", () => {
  it("skips unknown uids, rejects uid 0 and uids ≥ next_uid", () => {
    const b = new LogBuilder();
    let s = sdbox(b);
    s = applyTransaction(s, b.tx(R.expunge([[2, 2]])));
    const sel = applyEntry(s, b.entry(cache(1700)));
    expect(applyEntry(sel, b.entry(R.extRec(4, [[2, [1, 1, 1, 1]]])))).toBe(sel);
    expect(error(() => applyEntry(sel, b.entry(R.extRec(4, [[4, [1, 1, 1, 1]]])))).message).toContain("invalid uid=4");
    expect(error(() => applyEntry(sel, b.entry(R.extRec(4, [[0, [1, 1, 1, 1]]])))).message).toContain("invalid uid=0");
  });

  it("runs of consecutive records, gaps, repeats and unsorted entries: each message ends with its last entry's data", () => {
    // Entries naming consecutive records are applied in one walk; this checks it against a plain model.
    let seed = 7;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let round = 0; round < 40; round++) {
      const b = new LogBuilder();
      const uids = Array.from({ length: 1 + random(3000) }, (_, i) => i + 1);
      let s = applyTransaction(emptyIndexMap(), b.tx(R.append(uids), R.intro({ name: "y", recordSize: 4, recordAlign: 4 })));
      const gone = uids.filter(() => random(5) === 0);
      if (gone.length > 0) s = applyTransaction(s, b.tx(R.expunge(gone.map((u) => [u, u]))));
      const want = new Map<number, number[]>();
      const entries: Array<[number, number[]]> = [];
      let uid = 1 + random(uids.length);
      for (let i = random(4000); i > 0; i--) {
        // Mostly the next uid (runs), sometimes the same again or a jump anywhere.
        const r = random(10);
        uid = r < 7 ? uid + 1 : r < 8 ? uid : 1 + random(uids.length);
        if (uid > uids.length) uid = 1;
        const data = [random(256), random(256), round, 1];
        entries.push([uid, data]);
        if (!gone.includes(uid)) want.set(uid, data);
      }
      const before = s;
      s = applyTransaction(s, b.tx(R.intro({ name: "y", recordSize: 4, recordAlign: 4 }), R.extRec(4, entries)));
      for (const u of uids) {
        if (gone.includes(u)) continue;
        expect([...lookupUid(s, u)!.ext("y")!], `round ${round} uid ${u}`).toEqual(want.get(u) ?? [0, 0, 0, 0]);
        // The state it was applied to keeps its values (leaves copied, not written through).
        expect([...lookupUid(before, u)!.ext("y")!], `round ${round} uid ${u}`).toEqual([0, 0, 0, 0]);
      }
      // A run reaching past next_uid fails as an entry at a time does, naming that uid, and changes nothing.
      const last = uids.length;
      const sel = applyEntry(s, b.entry(R.intro({ name: "y", recordSize: 4, recordAlign: 4 })));
      expect(error(() => applyEntry(sel, b.entry(R.extRec(4, [[last, [9, 9, 9, 9]], [last + 1, [9, 9, 9, 9]]])))).message, `round ${round}`).toContain(`invalid uid=${last + 1}`);
      if (!gone.includes(last)) expect([...lookupUid(sel, last)!.ext("y")!]).toEqual(want.get(last) ?? [0, 0, 0, 0]);
    }
  });

  it("zeroes the rest of the field when the intro's record is smaller (NO_SHRINK)", () => {
    const b = new LogBuilder();
    let s = applyTransaction(emptyIndexMap(), b.tx(R.append([1]), R.intro({ name: "y", recordSize: 4, recordAlign: 1 }), R.extRec(4, [[1, [1, 2, 3, 4]]])));
    s = applyTransaction(s, b.tx(R.intro({ name: "y", recordSize: 2, recordAlign: 1, flags: 1 }), R.extRec(2, [[1, [9, 9]]])));
    expect(extension(s, "y")!.recordSize).toBe(4);
    expect([...lookupUid(s, 1)!.ext("y")!]).toEqual([9, 9, 0, 0]);
  });
});

describe("EXT_ATOMIC_INC", () => {
  const ref = (resetId = 0) => R.intro({ name: "ref", resetId, recordSize: 2, recordAlign: 2 });

  it("adds to u16 refcounts and rejects going below zero or past the maximum", () => {
    const b = new LogBuilder();
    let s = applyTransaction(emptyIndexMap(), b.tx(R.append([1, 2]), ref(), R.atomicInc([[1, 1], [2, 3], [1, 1]])));
    expect([...lookupUid(s, 1)!.ext("ref")!]).toEqual([2, 0]);
    expect([...lookupUid(s, 2)!.ext("ref")!]).toEqual([3, 0]);
    s = applyTransaction(s, b.tx(ref(), R.atomicInc([[2, -3]])));
    expect([...lookupUid(s, 2)!.ext("ref")!]).toEqual([0, 0]);
    const sel = applyEntry(s, b.entry(ref()));
    expect(error(() => applyEntry(sel, b.entry(R.atomicInc([[2, -1]])))).message).toContain("below zero");
    expect(error(() => applyEntry(sel, b.entry(R.atomicInc([[1, 65534]])))).message).toContain("overflows");
    expect(error(() => applyEntry(sel, b.entry(R.atomicInc([[1, 70000]])))).message).toContain("larger than max");
    expect(error(() => applyEntry(sel, b.entry(R.atomicInc([[3, 1]])))).message).toContain("invalid uid=3");
  });

  it("applies runs of consecutive uids across leaves and gaps as one update per message would", () => {
    // Runs are walked as one span (issue #11); gaps, expunged uids, repeats and
    // leaf edges (1,024 rows) must give what a lookup per update gives.
    const b = new LogBuilder();
    const all = Array.from({ length: 3000 }, (_, i) => i + 1);
    let s = applyTransaction(emptyIndexMap(), b.tx(R.append(all), ref(), R.atomicInc(all.map((u) => [u, 5] as const))));
    s = applyTransaction(s, b.tx(R.expunge([[1020, 1030], [2047, 2049]])));
    const before = s;
    const updates: Array<readonly [number, number]> = [];
    for (let u = 1000; u <= 2100; u++) updates.push([u, -1]);
    updates.push([1500, -2], [1501, 0], [1502, -1], [7, 3], [8, -4], [2999, -5], [3000, 1]);
    s = applyTransaction(s, b.tx(ref(), R.atomicInc(updates)));
    const want = new Map(all.map((u) => [u, 5]));
    for (const [u, d] of updates) want.set(u, want.get(u)! + d);
    for (const u of all) {
      const gone = (u >= 1020 && u <= 1030) || (u >= 2047 && u <= 2049);
      expect(lookupUid(s, u)?.ext("ref")?.[0]).toBe(gone ? undefined : want.get(u));
      // The state it was applied to keeps its values (leaves copied, not written through).
      if (!gone) expect(lookupUid(before, u)!.ext("ref")![0]).toBe(5);
    }
    // An error mid-run leaves the state as it was.
    const sel = applyEntry(s, b.entry(ref()));
    expect(error(() => applyEntry(sel, b.entry(R.atomicInc([[1100, -1], [1101, -1], [1102, -9]])))).message).toContain("below zero");
    expect(lookupUid(sel, 1100)!.ext("ref")![0]).toBe(4);
  });

  it("rejects fields that are not 1, 2, 4 or 8 bytes", () => {
    const b = new LogBuilder();
    const s = applyTransaction(emptyIndexMap(), b.tx(R.append([1]), R.intro({ name: "odd", recordSize: 3, recordAlign: 1 })));
    expect(error(() => applyEntry(s, b.entry(R.atomicInc([[1, 1]])))).message).toContain("invalid size=3");
  });

  it("writes 4-byte counters past 2^31 and 1-byte ones up to 255", () => {
    const b = new LogBuilder();
    const s = applyTransaction(
      emptyIndexMap(),
      b.tx(R.append([1]), R.intro({ name: "c4", recordSize: 4, recordAlign: 4 }), R.atomicInc([[1, 2_000_000_000], [1, 2_000_000_000], [1, 294_967_295]])),
    );
    expect(new DataView(lookupUid(s, 1)!.ext("c4")!.buffer).getUint32(0, true)).toBe(0xffffffff);
    const t = applyTransaction(emptyIndexMap(), b.tx(R.append([1]), R.intro({ name: "c1", recordSize: 1, recordAlign: 1 }), R.atomicInc([[1, 200], [1, 55]])));
    expect(lookupUid(t, 1)!.ext("c1")![0]).toBe(255);
  });

  it("handles 8-byte counters", () => {
    const b = new LogBuilder();
    const s = applyTransaction(
      emptyIndexMap(),
      b.tx(R.append([1]), R.intro({ name: "c8", recordSize: 8, recordAlign: 8 }), R.atomicInc([[1, 2_000_000_000], [1, 2_000_000_000]])),
    );
    expect(new DataView(lookupUid(s, 1)!.ext("c8")!.buffer).getBigUint64(0, true)).toBe(4_000_000_000n);
  });
});
