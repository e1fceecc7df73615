import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyTransactionWithEffects } from "../../src/projections/apply.js";
import type { TransactionEffects } from "../../src/projections/effects.js";
import { emptyIndexMap, type IndexMapState } from "../../src/projections/state.js";
import { createView, seqOf, syncView, uidAt, type MailboxView } from "../../src/projections/view.js";
import type { LogRecord } from "../../src/log/types.js";
import { LogBuilder, R } from "../unit/projections/log-builder.js";

/**
 * View sync against a plain model: the model keeps the mailbox's true UID
 * list and flags and, per client, the list it has been told about. Random
 * operations (append, flag change, a flag update that changes nothing,
 * expunge) are folded into an index map with their effects, which
 * interleave with syncs that apply or hold back expunges.
 *
 * Rerun a failure with the seed and path it prints:
 * PROP_SEED=<seed> PROP_PATH=<path> npx vitest run test/property/view-sync.test.ts
 */
const SEED = Number(process.env.PROP_SEED ?? 20250118);
const PATH = process.env.PROP_PATH;

type Op =
  | { kind: "append"; count: number }
  | { kind: "flag"; pick: number }
  | { kind: "noop-flag"; pick: number }
  | { kind: "expunge"; pick: number }
  | { kind: "sync"; expunges: boolean };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("append" as const), count: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant("flag" as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant("noop-flag" as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant("expunge" as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant("sync" as const), expunges: fc.boolean() }),
);

const SEEN = 8;

/** A mailbox that folds each transaction and keeps its effects, as a view's sync gets them. */
class Folding {
  private readonly builder = new LogBuilder({ fileSeq: 1 });
  state: IndexMapState = emptyIndexMap();
  pending: TransactionEffects[] = [];

  commit(...records: LogRecord[]): void {
    const { state, effects } = applyTransactionWithEffects(this.state, this.builder.tx(...records));
    this.state = state;
    this.pending.push(effects);
  }

  get modseq(): bigint {
    return this.builder.modseq;
  }
}

describe("view sync (property)", () => {
  it("matches the model: MSNs, announced appends/expunges, held-back expunges, flag changes", () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const box = new Folding();
      let nextUid = 1;
      let truth: number[] = [];
      const seen = new Set<number>();
      let view: MailboxView = createView({ fileSeq: 1, offset: 40 }, new Uint32Array(), box.modseq);
      let clientSees: number[] = [];
      let flagged = new Set<number>();
      for (const o of ops) {
        if (o.kind === "append") {
          const uids = Array.from({ length: o.count }, () => nextUid++);
          truth.push(...uids);
          box.commit(R.append(uids));
        } else if (o.kind === "flag" && truth.length > 0) {
          // Toggles \Seen: always a real change.
          const uid = truth[o.pick % truth.length];
          flagged.add(uid);
          const had = seen.has(uid);
          if (had) seen.delete(uid);
          else seen.add(uid);
          box.commit(R.flags(uid, uid, had ? 0 : SEEN, had ? SEEN : 0, { external: true }));
        } else if (o.kind === "noop-flag" && truth.length > 0) {
          // Asks for what the message already has (and for an unknown uid): no effect, not a flag change.
          const uid = truth[o.pick % truth.length];
          box.commit(R.flags(uid, uid, seen.has(uid) ? SEEN : 0, seen.has(uid) ? 0 : SEEN, { external: true }), R.flags(nextUid + 5, nextUid + 9, SEEN, 0));
        } else if (o.kind === "expunge" && truth.length > 0) {
          const uid = truth[o.pick % truth.length];
          truth = truth.filter((u) => u !== uid);
          seen.delete(uid);
          box.commit(R.expungeGuid([uid]));
        } else if (o.kind === "sync") {
          const pendingLog = box.pending;
          box.pending = [];
          const { view: next, changes } = syncView(view, pendingLog, { expunges: o.expunges });
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
          // Exactly the messages whose flags really changed and that the client still sees (a held-back expunge is still seen).
          expect(changes.flagsChanged).toEqual([...flagged].filter((uid) => list.includes(uid)).sort((a, b) => a - b));
          expect(next.highestModseq).toBe(box.modseq);
          list.forEach((uid, i) => { expect(uidAt(next, i + 1)).toBe(uid); expect(seqOf(next, uid)).toBe(i + 1); });
          flagged = new Set();
          clientSees = list;
          view = next;
        }
      }
    }), { numRuns: 400, seed: SEED, path: PATH });
  });

  /** A mailbox with messages 1, 2, 3 and the view at its position. */
  function threeMessages(): { box: Folding; v0: MailboxView } {
    const box = new Folding();
    box.commit(R.append([1, 2, 3]));
    box.pending = [];
    return { box, v0: createView(box.pending[0]?.end ?? { fileSeq: 1, offset: 40 }, Uint32Array.of(1, 2, 3), box.modseq) };
  }

  it("leaves the old view untouched (views are values)", () => {
    const { box, v0 } = threeMessages();
    box.commit(R.expungeGuid([2]));
    const { view } = syncView(v0, box.pending);
    expect(Array.from(v0.uids)).toEqual([1, 2, 3]);
    expect(Array.from(view.uids)).toEqual([1, 3]);
    const held = syncView(v0, box.pending, { expunges: false });
    expect(Array.from(held.view.uids)).toEqual([1, 2, 3]);
    expect(held.view.pendingExpunges).toEqual([2]);
    expect(held.changes.expunged).toEqual([]);
    const later = syncView(held.view, []);
    expect(later.changes.expunged).toEqual([{ uid: 2, seq: 2 }]);
  });

  it("ignores expunge requests (no EXTERNAL bit)", () => {
    const { box, v0 } = threeMessages();
    box.commit(R.expungeGuid([2], false));
    const { view, changes } = syncView(v0, box.pending);
    expect(Array.from(view.uids)).toEqual([1, 2, 3]);
    expect(changes.expunged).toEqual([]);
  });

  it("reports only real changes: a no-op flag update is not a flag change", () => {
    const { box, v0 } = threeMessages();
    box.commit(R.flags(1, 3, SEEN, 0, { external: true }));
    box.commit(R.flags(1, 2, SEEN, 0, { external: true }), R.flags(3, 3, 0, SEEN, { external: true }));
    const { changes } = syncView(v0, box.pending);
    expect(changes.flagsChanged).toEqual([1, 2, 3]);
    const again = syncView(v0, box.pending.slice(1));
    expect(again.changes.flagsChanged).toEqual([3]);
  });
});
