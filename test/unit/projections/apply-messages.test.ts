import { describe, expect, it } from "vitest";
import { LogCorruptedError } from "../../../src/shared/errors.js";
import { MailFlag } from "../../../src/log/types.js";
import { applyEntry, applyTransaction } from "../../../src/projections/apply.js";
import { IndexHeaderFlag } from "../../../src/projections/base-header.js";
import { getHeader, lookupUid, messageCount, recordAt, seqOfUid } from "../../../src/projections/read.js";
import { emptyIndexMap, type IndexMapState } from "../../../src/projections/state.js";
import { LogBuilder, R } from "./log-builder.js";

const { SEEN, DELETED, FLAGGED, DIRTY, ANSWERED } = MailFlag;

function start(): { b: LogBuilder; s: IndexMapState } {
  return { b: new LogBuilder(), s: emptyIndexMap({ indexId: 7 }) };
}

describe("APPEND", () => {
  it("adds records with their flags, moves next_uid and counts \\Seen/\\Deleted", () => {
    const { b, s } = start();
    const s1 = applyTransaction(s, b.tx(R.append([[1, SEEN], [5, DELETED | FLAGGED], 6])));
    const h = getHeader(s1);
    expect(messageCount(s1)).toBe(3);
    expect(h.messagesCount).toBe(3);
    expect(h.nextUid).toBe(7);
    expect(h.seenMessagesCount).toBe(1);
    expect(h.deletedMessagesCount).toBe(1);
    expect([1, 2, 3].map((q) => [recordAt(s1, q)!.uid, recordAt(s1, q)!.flags])).toEqual([
      [1, SEEN],
      [5, DELETED | FLAGGED],
      [6, 0],
    ]);
    expect(seqOfUid(s1, 5)).toBe(2);
    expect(lookupUid(s1, 2)).toBeUndefined();
  });

  it("keeps low-water marks as Dovecot does: 0 until all seen, then next_uid, lowered by unseen appends", () => {
    const { b, s } = start();
    let st = applyTransaction(s, b.tx(R.append([[1, SEEN], [2, SEEN]])));
    // Every message seen → first_unseen_uid_lowwater jumps to next_uid (set when the count reached 2: next_uid was 3).
    expect(getHeader(st).firstUnseenUidLowwater).toBe(3);
    st = applyTransaction(st, b.tx(R.append([4])));
    expect(getHeader(st).firstUnseenUidLowwater).toBe(3);
    st = applyTransaction(st, b.tx(R.flags(4, 4, SEEN, 0)));
    expect(getHeader(st).firstUnseenUidLowwater).toBe(5);
    st = applyTransaction(st, b.tx(R.flags(2, 2, 0, SEEN)));
    expect(getHeader(st).firstUnseenUidLowwater).toBe(2);
    expect(getHeader(st).seenMessagesCount).toBe(2);
  });

  it("rejects a uid below next_uid with the entry's position", () => {
    const { b, s } = start();
    const s1 = applyTransaction(s, b.tx(R.append([3])));
    const tx = b.tx(R.append([2]));
    let error: unknown;
    try {
      applyTransaction(s1, tx);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LogCorruptedError);
    expect((error as LogCorruptedError).offset).toBe(tx.entries[0].position.offset);
    expect((error as LogCorruptedError).fileSeq).toBe(2);
    expect((error as Error).message).toContain("Append with UID 2, but next_uid = 4");
    expect(messageCount(s1)).toBe(1);
  });

  it("sets HAVE_DIRTY for a DIRTY append and clears it when no record is dirty any more", () => {
    const { b, s } = start();
    let st = applyTransaction(s, b.tx(R.append([[1, DIRTY | SEEN], 2])));
    expect(getHeader(st).flags & IndexHeaderFlag.HAVE_DIRTY).toBeTruthy();
    st = applyTransaction(st, b.tx(R.flags(1, 1, 0, DIRTY, { external: true })));
    expect(getHeader(st).flags & IndexHeaderFlag.HAVE_DIRTY).toBe(0);
    st = applyTransaction(st, b.tx(R.flags(2, 2, DIRTY, 0)));
    expect(getHeader(st).flags & IndexHeaderFlag.HAVE_DIRTY).toBeTruthy();
    st = applyTransaction(st, b.tx(R.expunge([[2, 2]])));
    expect(getHeader(st).flags & IndexHeaderFlag.HAVE_DIRTY).toBe(0);
  });
});

describe("FLAG_UPDATE", () => {
  it("applies (flags & ~remove) | add to existing messages in the ranges only", () => {
    const { b, s } = start();
    let st = applyTransaction(s, b.tx(R.append([[1, SEEN], [3, SEEN | ANSWERED], 4])));
    st = applyTransaction(st, b.tx(R.flags(2, 3, FLAGGED, SEEN)));
    expect([1, 2, 3].map((q) => recordAt(st, q)!.flags)).toEqual([SEEN, ANSWERED | FLAGGED, 0]);
    expect(getHeader(st).seenMessagesCount).toBe(1);
  });

  it("counts deleted flips and resets the deleted low-water mark when none is left", () => {
    const { b, s } = start();
    let st = applyTransaction(s, b.tx(R.append([1, 2, 3])));
    st = applyTransaction(st, b.tx(R.flags(2, 3, DELETED, 0)));
    expect(getHeader(st).deletedMessagesCount).toBe(2);
    expect(getHeader(st).firstDeletedUidLowwater).toBe(0);
    st = applyTransaction(st, b.tx(R.flags(1, 3, 0, DELETED)));
    expect(getHeader(st).deletedMessagesCount).toBe(0);
    expect(getHeader(st).firstDeletedUidLowwater).toBe(4);
    st = applyTransaction(st, b.tx(R.flags(3, 3, DELETED, 0)));
    expect(getHeader(st).firstDeletedUidLowwater).toBe(3);
  });

  it("returns the same state when the range holds no message", () => {
    const { b, s } = start();
    const st = applyTransaction(s, b.tx(R.append([1, 2])));
    const e = b.entry(R.flags(5, 9, SEEN, 0));
    expect(applyEntry(st, e)).toBe(st);
  });

  it("returns the same state when every flag is already as asked (no modseq extension)", () => {
    const { b, s } = start();
    const st = applyTransaction(s, b.tx(R.append([[1, SEEN]])));
    expect(applyEntry(st, b.entry(R.flags(1, 1, SEEN, 0)))).toBe(st);
  });
});

describe("EXPUNGE / EXPUNGE_GUID", () => {
  it("ignores requests (no EXTERNAL): same state object", () => {
    const { b, s } = start();
    const st = applyTransaction(s, b.tx(R.append([1, 2])));
    expect(applyEntry(st, b.entry(R.expunge([[1, 2]], false)))).toBe(st);
    expect(applyEntry(st, b.entry(R.expungeGuid([1], false)))).toBe(st);
  });

  it("removes EXTERNAL expunges, shifting sequence numbers and fixing counters", () => {
    const { b, s } = start();
    let st = applyTransaction(s, b.tx(R.append([[1, SEEN], [2, DELETED], [3, SEEN], 4, 5])));
    st = applyTransaction(st, b.tx(R.expunge([[1, 2], [4, 4], [9, 12]])));
    expect(messageCount(st)).toBe(2);
    expect(recordAt(st, 1)!.uid).toBe(3);
    expect(recordAt(st, 2)!.uid).toBe(5);
    const h = getHeader(st);
    expect(h.seenMessagesCount).toBe(1);
    expect(h.deletedMessagesCount).toBe(0);
    expect(h.firstDeletedUidLowwater).toBe(6);
    expect(h.nextUid).toBe(6);
  });

  it("expunge-guid removes by uid in any order and ignores the guid", () => {
    const { b, s } = start();
    let st = applyTransaction(s, b.tx(R.append([1, 2, 3, 4])));
    st = applyTransaction(st, b.tx(R.expungeGuid([4, 2, 7])));
    expect([1, 2].map((q) => recordAt(st, q)!.uid)).toEqual([1, 3]);
  });
});

describe("EXPUNGE counters, counted per range (fast-check)", () => {
  /** Dovecot's rule, row by row: each expunged row's flags go to 0 (mail_index_header_update_counts). */
  function model(rows: Array<[number, number]>, h: { nextUid: number; seen: number; deleted: number; deletedLowwater: number; count: number }, gone: Array<[number, number]>) {
    const c = { ...h };
    for (const [first, last] of gone) {
      for (let i = first; i <= last; i++) {
        const [uid, flags] = rows[i];
        if (uid >= c.nextUid) return { error: `uid ${uid} >= next_uid ${c.nextUid}` };
        if (flags & SEEN) {
          if (c.seen === 0) return { error: "Seen counter wrong" };
          c.seen--;
        }
        if (flags & DELETED) {
          if (c.deleted === 0 || c.deleted > c.count) return { error: "Deleted counter wrong" };
          if (--c.deleted === 0) c.deletedLowwater = c.nextUid;
        }
      }
      c.count -= last - first + 1;
    }
    return { seen: c.seen, deleted: c.deleted, deletedLowwater: c.deletedLowwater, dirty: rows.filter(([, f], i) => f & DIRTY && !gone.some(([a, b]) => i >= a && i <= b)).length };
  }

  it("gives Dovecot's row-by-row counters, or its error naming the first row that breaks one", async () => {
    const fc = (await import("fast-check")).default;
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(0, SEEN, DELETED, SEEN | DELETED, DIRTY | SEEN, DIRTY | DELETED, FLAGGED), { minLength: 1, maxLength: 2500 }),
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 1200 })), { minLength: 1, maxLength: 4 }),
        fc.option(fc.tuple(fc.nat({ max: 3000 }), fc.nat({ max: 3000 })), { freq: 3 }),
        (flags, cuts, wrongCounts) => {
          const { b, s } = start();
          let st = applyTransaction(s, b.tx(R.append(flags.map((f, i) => [i + 1, f] as const))));
          // Wrong counters, as a damaged dovecot.index could bring (seen_messages_count at 40, deleted at 44).
          if (wrongCounts) st = applyTransaction(st, b.tx(R.headerU32(40, wrongCounts[0]), R.headerU32(44, wrongCounts[1])));
          const before = getHeader(st);
          const marks = new Set<number>();
          for (const [start, len] of cuts) for (let i = start % flags.length; i < Math.min(flags.length, (start % flags.length) + len); i++) marks.add(i);
          const gone: Array<[number, number]> = [];
          for (const i of [...marks].sort((x, y) => x - y)) {
            const last = gone[gone.length - 1];
            if (last && last[1] === i - 1) last[1] = i;
            else gone.push([i, i]);
          }
          if (gone.length === 0) return;
          const expected = model(flags.map((f, i) => [i + 1, f]), {
            nextUid: before.nextUid, seen: before.seenMessagesCount, deleted: before.deletedMessagesCount, deletedLowwater: before.firstDeletedUidLowwater, count: flags.length,
          }, gone);
          let got;
          try {
            const after = applyTransaction(st, b.tx(R.expunge(gone.map(([a, z]) => [a + 1, z + 1]))));
            const h = getHeader(after);
            got = { seen: h.seenMessagesCount, deleted: h.deletedMessagesCount, deletedLowwater: h.firstDeletedUidLowwater, dirty: after.dirtyCount };
          } catch (err) {
            if (!(err instanceof LogCorruptedError)) throw err;
            got = { error: err.message.replace(/^.*: expunge: /, "") };
          }
          expect(got).toEqual(expected);
        },
      ),
      { seed: 0xc0c0, numRuns: 150 },
    );
  });
});

describe("FLAG_UPDATE counters, counted per range (fast-check)", () => {
  type Counts = { nextUid: number; count: number; seen: number; deleted: number; unseenLowwater: number; deletedLowwater: number };

  /** Dovecot's rule, row by row and update by update: low-water marks, then counters, per flip (mail_index_header_update_*). */
  function model(flags: number[], h: Counts, updates: Array<{ uid1: number; uid2: number; add: number; remove: number }>) {
    const rows = flags.slice();
    const c = { ...h };
    for (const u of updates) {
      for (let i = u.uid1 - 1; i < Math.min(rows.length, u.uid2); i++) {
        const uid = i + 1;
        const old = rows[i];
        const now = (old & ~u.remove) | u.add;
        rows[i] = now;
        if (((u.add | u.remove) & (SEEN | DELETED)) === 0) continue;
        if ((now & SEEN) === 0 && uid < c.unseenLowwater) c.unseenLowwater = uid;
        if (now & DELETED && uid < c.deletedLowwater) c.deletedLowwater = uid;
        if ((old ^ now) & SEEN) {
          if (old & SEEN) {
            if (c.seen === 0) return { error: "Seen counter wrong" };
            c.seen--;
          } else {
            if (c.seen >= c.count) return { error: "Seen counter wrong" };
            if (++c.seen === c.count) c.unseenLowwater = c.nextUid;
          }
        }
        if ((old ^ now) & DELETED) {
          if ((old & DELETED) === 0) {
            if (++c.deleted > c.count) return { error: "Deleted counter wrong" };
          } else {
            if (c.deleted === 0 || c.deleted > c.count) return { error: "Deleted counter wrong" };
            if (--c.deleted === 0) c.deletedLowwater = c.nextUid;
          }
        }
      }
    }
    return { flags: rows, seen: c.seen, deleted: c.deleted, unseenLowwater: c.unseenLowwater, deletedLowwater: c.deletedLowwater, dirty: rows.filter((f) => f & DIRTY).length };
  }

  it("gives Dovecot's row-by-row counters and low-water marks, or its error, on random states and updates", async () => {
    const fc = (await import("fast-check")).default;
    const seed = 0xf1a9;
    const flag = fc.constantFrom(0, SEEN, DELETED, SEEN | DELETED, DIRTY, FLAGGED, ANSWERED);
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(0, SEEN, DELETED, SEEN | DELETED, DIRTY | SEEN, DIRTY | DELETED, FLAGGED), { minLength: 1, maxLength: 2500 }),
        fc.array(fc.record({ start: fc.nat(), len: fc.nat({ max: 1500 }), add: flag, remove: flag }), { minLength: 1, maxLength: 4 }),
        // Wrong counters and marks, as a damaged dovecot.index could bring (header offsets 40, 44, 52, 56).
        fc.option(fc.tuple(fc.nat({ max: 3000 }), fc.nat({ max: 3000 }), fc.nat({ max: 3000 }), fc.nat({ max: 3000 })), { freq: 3 }),
        (flags, asked, damage) => {
          const { b, s } = start();
          let st = applyTransaction(s, b.tx(R.append(flags.map((f, i) => [i + 1, f] as const))));
          if (damage) st = applyTransaction(st, b.tx(R.headerU32(40, damage[0]), R.headerU32(44, damage[1]), R.headerU32(52, damage[2]), R.headerU32(56, damage[3])));
          const h = getHeader(st);
          const updates = asked.map(({ start: a, len, add, remove }) => ({ uid1: (a % flags.length) + 1, uid2: (a % flags.length) + 1 + len, add, remove }));
          const expected = model(flags, {
            nextUid: h.nextUid, count: flags.length, seen: h.seenMessagesCount, deleted: h.deletedMessagesCount, unseenLowwater: h.firstUnseenUidLowwater, deletedLowwater: h.firstDeletedUidLowwater,
          }, updates);
          let got;
          try {
            const after = applyTransaction(st, b.tx(...updates.map((u) => R.flags(u.uid1, u.uid2, u.add, u.remove))));
            const a = getHeader(after);
            got = {
              flags: flags.map((_, i) => recordAt(after, i + 1)!.flags), seen: a.seenMessagesCount, deleted: a.deletedMessagesCount,
              unseenLowwater: a.firstUnseenUidLowwater, deletedLowwater: a.firstDeletedUidLowwater, dirty: after.dirtyCount,
            };
          } catch (err) {
            if (!(err instanceof LogCorruptedError)) throw err;
            got = { error: err.message.replace(/^.*: flag-update: /, "") };
          }
          expect(got, `seed ${seed}`).toEqual(expected);
        },
      ),
      { seed, numRuns: 200 },
    );
  });
});
