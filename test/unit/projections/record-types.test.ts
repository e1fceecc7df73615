/**
 * Every log record type is handled everywhere records are interpreted.
 *
 * At compile time (tsc -p tsconfig.test.json): the tables below are keyed by
 * LogRecordType, so a record type added to src/log/types.ts does not compile
 * until it is listed here with a sample and the effects it may have; and
 * every switch over record or effect types in src ends in assertNever
 * (src/shared/errors.ts), so it does not compile either until it handles the type.
 *
 * At run time: each record type is applied to a mailbox, and its effects go
 * through every consumer (change streams, view sync, Maildir pending
 * changes); none may throw, and the effects must be of the kinds listed.
 */
import { describe, expect, it } from "vitest";
import { changeBatchFromEffects } from "../../../src/api/changes.js";
import { pendingChangesOf } from "../../../src/drivers/maildir/pending-changes.js";
import { RECORD_TYPE_VALUES } from "../../../src/log/codec.js";
import type { LogRecord, LogRecordBody, LogRecordType } from "../../../src/log/types.js";
import { applyTransaction, applyTransactionWithEffects } from "../../../src/projections/apply.js";
import type { EffectType } from "../../../src/projections/effects.js";
import { emptyIndexMap } from "../../../src/projections/state.js";
import { createView, syncView } from "../../../src/projections/view.js";
import { enableModseq, LogBuilder, R } from "./log-builder.js";

/** One record body of each type, valid on the mailbox of `mailbox()`. */
const SAMPLES: { [T in LogRecordType]: Extract<LogRecordBody, { type: T }> } = {
  "expunge": { type: "expunge", ranges: [{ uid1: 1, uid2: 1 }] },
  "append": { type: "append", messages: [{ uid: 10, flags: 0x08 }] },
  "flag-update": { type: "flag-update", updates: [{ uid1: 2, uid2: 3, addFlags: 0x02, removeFlags: 0, modseqIncFlag: 0 }] },
  "header-update": { type: "header-update", patches: [{ offset: 80, data: Uint8Array.of(1, 0, 0, 0) }] },
  "ext-intro": { type: "ext-intro", intros: [{ extId: 0xffffffff, resetId: 0, hdrSize: 8, recordSize: 4, recordAlign: 4, flags: 1, name: "test-ext" }] },
  "ext-reset": { type: "ext-reset", newResetId: 7, preserveData: 0 },
  "ext-hdr": { type: "ext-hdr", patches: [{ offset: 0, data: Uint8Array.of(1, 2) }] },
  "ext-hdr32": { type: "ext-hdr32", patches: [{ offset: 4, data: Uint8Array.of(3, 4) }] },
  "ext-rec": { type: "ext-rec", recordSize: 4, updates: [{ uid: 2, data: Uint8Array.of(1, 2, 3, 4) }] },
  "keyword-update": { type: "keyword-update", modifyType: "add", name: "Work", ranges: [{ uid1: 1, uid2: 3 }] },
  "keyword-reset": { type: "keyword-reset", ranges: [{ uid1: 3, uid2: 3 }] },
  "ext-atomic-inc": { type: "ext-atomic-inc", updates: [{ uid: 2, diff: 5 }] },
  "expunge-guid": { type: "expunge-guid", expunges: [{ uid: 2, guid: new Uint8Array(16) }] },
  "modseq-update": { type: "modseq-update", updates: [{ uid: 3, modseq: 1000n }] },
  "index-deleted": { type: "index-deleted" },
  "index-undeleted": { type: "index-undeleted" },
  "boundary": { type: "boundary", size: 12 },
  "attribute-update": { type: "attribute-update", changes: [{ op: "+", scope: "s", key: "comment", timestamp: 1, valueLength: 2 }] },
};

/**
 * The effects each record type can have (its sample, internal and EXTERNAL,
 * has exactly these). Storage-internal records have none: a new record type
 * must say here what it does to messages, and its applier must report it.
 */
const EFFECTS: { [T in LogRecordType]: { internal: readonly EffectType[]; external: readonly EffectType[] } } = {
  "expunge": { internal: ["expunge-request"], external: ["expunge"] },
  "append": { internal: ["append", "modseq"], external: ["append", "modseq"] },
  "flag-update": { internal: ["flags", "modseq"], external: ["flags", "modseq"] },
  "header-update": { internal: [], external: [] },
  "ext-intro": { internal: [], external: [] },
  "ext-reset": { internal: [], external: [] },
  "ext-hdr": { internal: [], external: [] },
  "ext-hdr32": { internal: [], external: [] },
  "ext-rec": { internal: [], external: [] },
  "keyword-update": { internal: ["keywords", "modseq"], external: ["keywords", "modseq"] },
  "keyword-reset": { internal: ["keywords-reset", "modseq"], external: ["keywords-reset", "modseq"] },
  "ext-atomic-inc": { internal: [], external: [] },
  "expunge-guid": { internal: ["expunge-request"], external: ["expunge"] },
  "modseq-update": { internal: ["modseq"], external: ["modseq"] },
  // The mailbox is deleted (and a deletion requested) already: once more changes nothing.
  "index-deleted": { internal: [], external: [] },
  // Undeletes what the mailbox's setup deleted (internal: the request; external: the deletion).
  "index-undeleted": { internal: ["mailbox-undeleted"], external: ["mailbox-undeleted"] },
  "boundary": { internal: [], external: [] },
  "attribute-update": { internal: ["attribute"], external: ["attribute"] },
};

/** Messages 1..3 (3 with a keyword), modseqs tracked, the test extension selected with a field; deleted (done and requested). */
function mailbox(b: LogBuilder) {
  let state = applyTransaction(emptyIndexMap(), b.tx(...enableModseq(1n)));
  state = applyTransaction(state, b.tx(R.append([1, 2, 3]), R.keyword("add", "Old", [[3, 3]])));
  state = applyTransaction(state, b.tx(R.indexDeleted(true), R.indexDeleted(false)));
  return applyTransaction(state, b.tx({ ...SAMPLES["ext-intro"], external: true, sync: false }));
}

describe("every log record type", () => {
  it("is in the codec's table and in these tables (the runtime list of LogRecordType)", () => {
    expect(Object.keys(SAMPLES).sort()).toEqual(Object.keys(RECORD_TYPE_VALUES).sort());
    expect(Object.keys(EFFECTS).sort()).toEqual(Object.keys(RECORD_TYPE_VALUES).sort());
  });

  for (const type of Object.keys(RECORD_TYPE_VALUES) as LogRecordType[]) {
    for (const external of [false, true]) {
      it(`${type} (${external ? "EXTERNAL" : "internal"}) is applied, has the listed effects, and every consumer takes them`, () => {
        const b = new LogBuilder();
        const before = mailbox(b);
        const record = { ...SAMPLES[type], external, sync: false } as LogRecord;
        const tx = b.tx(record);
        const { effects } = applyTransactionWithEffects(before, tx);
        const kinds = [...new Set(effects.effects.map((e) => e.type))].sort();
        expect(kinds).toEqual([...EFFECTS[type][external ? "external" : "internal"]].sort());
        expect(() => changeBatchFromEffects(effects)).not.toThrow();
        expect(() => pendingChangesOf(before, [effects])).not.toThrow();
        expect(() => syncView(createView(tx.position, Uint32Array.of(1, 2, 3), 1n), [effects])).not.toThrow();
      });
    }
  }
});
