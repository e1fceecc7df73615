import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeBundle, encodeBundle } from "../../src/forensics/bundle.js";
import { exportBundle, importBundle } from "../../src/forensics/export.js";
import { TransactionLog } from "../../src/log/log.js";
import type { LogRecord } from "../../src/log/types.js";
import { loadState } from "../../src/index-io/load-state.js";
import { writeCheckpoint } from "../../src/index-io/checkpoint-file.js";
import { encodeIndexFile } from "../../src/projections/index-file.js";
import { getHeader, keywordNames, messageCount, recordAt } from "../../src/projections/read.js";
import type { IndexMapState } from "../../src/projections/state.js";

type Op = { kind: "append" | "flag" | "keyword" | "expunge" | "checkpoint" | "rotate"; n: number };
const op = fc.record({ kind: fc.constantFrom("append", "append", "flag", "keyword", "expunge", "checkpoint", "rotate") as fc.Arbitrary<Op["kind"]>, n: fc.nat(1000) });

/** What a mailbox shows: header counters, keywords and every message. */
function visible(state: IndexMapState) {
  const h = getHeader(state);
  const messages = [];
  for (let seq = 1; seq <= messageCount(state); seq++) {
    const r = recordAt(state, seq)!;
    messages.push({ uid: r.uid, flags: r.flags, keywords: r.keywords, modseq: r.modseq });
  }
  return { uidValidity: h.uidValidity, nextUid: h.nextUid, seen: h.seenMessagesCount, keywords: keywordNames(state), messages };
}

describe("export → import-events (property)", () => {
  it("an exported bundle replays to the identical state, with or without a checkpoint and rotations", async () => {
    await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), fc.constantFrom("msgpack" as const, "json" as const), async (ops, encoding) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-prop-"));
      try {
        const prefix = path.join(dir, "a", "dovecot.index");
        fs.mkdirSync(path.dirname(prefix));
        const validity = Uint8Array.of(7, 0, 0, 0);
        const log = TransactionLog.open(prefix, { create: { indexId: 99, initialRecords: [{ type: "header-update", external: true, sync: false, patches: [{ offset: 24, data: validity }] }] }, fsync: "never" });
        let nextUid = 1;
        const live: number[] = [];
        for (const o of ops) {
          const uid = live.length > 0 ? live[o.n % live.length] : 0;
          let records: LogRecord[] = [];
          if (o.kind === "append") {
            records = [{ type: "append", external: true, sync: false, messages: [{ uid: nextUid, flags: o.n % 2 ? 8 : 0 }] }];
            live.push(nextUid++);
          } else if (o.kind === "flag" && uid) {
            records = [{ type: "flag-update", external: false, sync: false, updates: [{ uid1: uid, uid2: uid, addFlags: o.n & 0x1f, removeFlags: ~o.n & 0x0a, modseqIncFlag: 0 }] }];
          } else if (o.kind === "keyword" && uid) {
            records = [{ type: "keyword-update", external: false, sync: false, modifyType: o.n % 3 ? "add" : "remove", name: `k${o.n % 4}`, ranges: [{ uid1: uid, uid2: uid }] }];
          } else if (o.kind === "expunge" && uid) {
            records = [{ type: "expunge-guid", external: true, sync: false, expunges: [{ uid, guid: new Uint8Array(16) }] }];
            live.splice(live.indexOf(uid), 1);
          } else if (o.kind === "checkpoint") {
            writeCheckpoint(prefix, loadState(prefix), { fsync: false });
          } else if (o.kind === "rotate") {
            await log.rotate();
            writeCheckpoint(prefix, loadState(prefix), { fsync: false });
          }
          if (records.length > 0) await log.append(records);
        }
        await log.close();
        const bundle = decodeBundle(encodeBundle(exportBundle(prefix), encoding), "bundle");
        const target = path.join(dir, "b", "dovecot.index");
        fs.mkdirSync(path.dirname(target));
        importBundle(bundle, target);
        const source = loadState(prefix);
        const copy = loadState(target);
        expect(visible(copy)).toEqual(visible(source));
        // Everything but the log-file bookkeeping (log_file_seq/tail/head, log2_rotate_time) is the same dovecot.index.
        const a = encodeIndexFile(source), b = encodeIndexFile(copy);
        a.fill(0, 60, 80); b.fill(0, 60, 80);
        expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).toBe(0);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }), { numRuns: 150, seed: Number(process.env.PROP_SEED ?? 424242) });
  });
});
