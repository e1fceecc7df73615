import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createView, seqOf, syncView, uidAt, type MailboxView } from "../../src/projections/view.js";
import type { LogRecord, LogTransaction } from "../../src/log/types.js";

/**
 * View sync against a plain model: the model keeps the mailbox's true UID
 * list and, per client, the list it has been told about. Random operations
 * (append, flag change, expunge) interleave with syncs that apply or hold
 * back expunges.
 */
type Op =
  | { kind: "append"; count: number }
  | { kind: "flag"; pick: number }
  | { kind: "expunge"; pick: number }
  | { kind: "sync"; expunges: boolean };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("append" as const), count: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant("flag" as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant("expunge" as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant("sync" as const), expunges: fc.boolean() }),
);

const ext = { external: true, sync: false };
let offset = 40;
function tx(records: LogRecord[], modseq: bigint): LogTransaction {
  const position = { fileSeq: 1, offset };
  offset += 100;
  return { position, end: { fileSeq: 1, offset }, entries: records.map((record) => ({ position, size: 16, modseq, record })), modseq, external: true, framed: false };
}

describe("view sync (property)", () => {
  it("matches the model: MSNs, announced appends/expunges, held-back expunges, flag changes", () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      let nextUid = 1;
      let modseq = 1n;
      let truth: number[] = [];
      let view: MailboxView = createView({ fileSeq: 1, offset: 40 }, new Uint32Array(), 1n);
      let clientSees: number[] = [];
      let pendingLog: LogTransaction[] = [];
      let flagged = new Set<number>();
      for (const o of ops) {
        if (o.kind === "append") {
          const messages = Array.from({ length: o.count }, () => ({ uid: nextUid++, flags: 0 }));
          truth.push(...messages.map((m) => m.uid));
          pendingLog.push(tx([{ type: "append", ...ext, messages }], ++modseq));
        } else if (o.kind === "flag" && truth.length > 0) {
          const uid = truth[o.pick % truth.length];
          flagged.add(uid);
          pendingLog.push(tx([{ type: "flag-update", ...ext, updates: [{ uid1: uid, uid2: uid, addFlags: 8, removeFlags: 0, modseqIncFlag: 0 }] }], ++modseq));
        } else if (o.kind === "expunge" && truth.length > 0) {
          const uid = truth[o.pick % truth.length];
          truth = truth.filter((u) => u !== uid);
          pendingLog.push(tx([{ type: "expunge-guid", ...ext, expunges: [{ uid, guid: new Uint8Array(16) }] }], ++modseq));
        } else if (o.kind === "sync") {
          const { view: next, changes } = syncView(view, pendingLog, { expunges: o.expunges });
          pendingLog = [];
          // Replaying the announced changes on the client's list gives the view's list.
          let list = [...clientSees];
          for (const e of changes.expunged) {
            expect(list[e.seq - 1]).toBe(e.uid);
            list.splice(e.seq - 1, 1);
          }
          list.push(...changes.appended);
          expect(Array.from(next.uids)).toEqual(list);
          // With expunges synced the view is the truth; held back, it is the truth plus pending expunges.
          const expected = o.expunges ? truth : [...new Set([...truth, ...next.pendingExpunges])].sort((a, b) => a - b);
          expect(list).toEqual(expected);
          if (o.expunges) expect(next.pendingExpunges).toEqual([]);
          for (const uid of changes.flagsChanged) expect(flagged.has(uid)).toBe(true);
          for (const uid of flagged) if (!clientSees.includes(uid) && list.includes(uid)) expect(changes.appended.includes(uid) || changes.flagsChanged.includes(uid)).toBe(true);
          expect(next.highestModseq).toBe(modseq);
          list.forEach((uid, i) => { expect(uidAt(next, i + 1)).toBe(uid); expect(seqOf(next, uid)).toBe(i + 1); });
          flagged = new Set();
          clientSees = list;
          view = next;
        }
      }
    }), { numRuns: 400 });
  });

  it("leaves the old view untouched (views are values)", () => {
    const v0 = createView({ fileSeq: 1, offset: 40 }, Uint32Array.of(1, 2, 3), 5n);
    const { view } = syncView(v0, [tx([{ type: "expunge-guid", ...ext, expunges: [{ uid: 2, guid: new Uint8Array(16) }] }], 6n)]);
    expect(Array.from(v0.uids)).toEqual([1, 2, 3]);
    expect(Array.from(view.uids)).toEqual([1, 3]);
    const held = syncView(v0, [tx([{ type: "expunge-guid", ...ext, expunges: [{ uid: 2, guid: new Uint8Array(16) }] }], 6n)], { expunges: false });
    expect(Array.from(held.view.uids)).toEqual([1, 2, 3]);
    expect(held.view.pendingExpunges).toEqual([2]);
    expect(held.changes.expunged).toEqual([]);
    const later = syncView(held.view, []);
    expect(later.changes.expunged).toEqual([{ uid: 2, seq: 2 }]);
  });

  it("ignores expunge requests (no EXTERNAL bit)", () => {
    const v0 = createView({ fileSeq: 1, offset: 40 }, Uint32Array.of(1, 2), 5n);
    const { view, changes } = syncView(v0, [tx([{ type: "expunge-guid", external: false, sync: false, expunges: [{ uid: 2, guid: new Uint8Array(16) }] }], 5n)]);
    expect(Array.from(view.uids)).toEqual([1, 2]);
    expect(changes.expunged).toEqual([]);
  });
});
