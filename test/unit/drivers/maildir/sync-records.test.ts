import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { emptyOutcome, syncRecords, withTailOffset } from "../../../../src/drivers/maildir/sync-records.js";
import { TransactionLog } from "../../../../src/log/log.js";
import { loadState } from "../../../../src/index-io/load-state.js";
import { emptyIndexMap } from "../../../../src/projections/state.js";

describe("Maildir sync records", () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-maildir-records-"))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("are ordered as Dovecot exports them, merge adjacent messages into ranges, and are all EXTERNAL", () => {
    const o = emptyOutcome();
    o.uidValidity = 42;
    o.appends.push({ uid: 7, flags: 8, keywords: ["k"] }, { uid: 8, flags: 0, keywords: ["k"] });
    o.flagReplaces.push({ seq: 1, uid: 1, add: 8, remove: 0x17 }, { seq: 2, uid: 3, add: 8, remove: 0x17 }, { seq: 4, uid: 5, add: 0, remove: 0x1f });
    o.keywordChanges.push({ seq: 2, uid: 3, name: "k", add: false });
    o.expunges.push(6);
    o.nextUid = 10;
    const records = syncRecords(emptyIndexMap(), o);
    expect(records.map((r) => r.type)).toEqual(["header-update", "append", "flag-update", "keyword-update", "keyword-update", "expunge-guid", "header-update"]);
    expect(records.every((r) => r.external)).toBe(true);
    const flags = records.find((r) => r.type === "flag-update");
    expect(flags?.type === "flag-update" && flags.updates.map((u) => [u.uid1, u.uid2, u.addFlags, u.removeFlags])).toEqual([[1, 3, 8, 0x17], [5, 5, 0, 0x1f]]);
    const kw = records.filter((r) => r.type === "keyword-update");
    expect(kw.map((r) => r.type === "keyword-update" && [r.modifyType, r.ranges])).toEqual([["add", [{ uid1: 7, uid2: 8 }]], ["remove", [{ uid1: 3, uid2: 3 }]]]);
  });

  it("the tail-offset update lands exactly at the end of the log, as Dovecot writes it", async () => {
    const prefix = path.join(dir, "dovecot.index");
    const log = TransactionLog.open(prefix, { create: {} });
    await log.append([{ type: "append", external: true, sync: false, messages: [{ uid: 1, flags: 0 }] }]);
    await log.append([{ type: "flag-update", external: false, sync: false, updates: [{ uid1: 1, uid2: 1, addFlags: 8, removeFlags: 0, modseqIncFlag: 0 }] }]);
    const before = loadState(prefix);
    expect(before.header.logFileTailOffset).toBeLessThan(before.header.logFileHeadOffset);
    const o = emptyOutcome();
    o.flagReplaces.push({ seq: 1, uid: 1, add: 8, remove: 0x17 });
    const txs = withTailOffset(syncRecords(before, o), before.header.logFileHeadOffset);
    expect(txs).toHaveLength(2);
    await log.appendTransactions(txs);
    const after = loadState(prefix);
    expect(after.header.logFileTailOffset).toBe(after.header.logFileHeadOffset);
    const tailOnly = withTailOffset([], after.header.logFileHeadOffset);
    expect(tailOnly).toHaveLength(1);
    await log.appendTransactions(tailOnly);
    const last = loadState(prefix);
    expect(last.header.logFileTailOffset).toBe(last.header.logFileHeadOffset);
    await log.close();
  });
});
