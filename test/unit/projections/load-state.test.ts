import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LogPositionLostError } from "../../../src/shared/errors.js";
import { TransactionLog } from "../../../src/log/log.js";
import type { LogPosition, LogRecord } from "../../../src/log/types.js";
import { loadState, stateAt } from "../../../src/index-io/load-state.js";
import { lookupUid, messageCount, position } from "../../../src/projections/read.js";

let dir: string;
let prefix: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-stateat-"));
  prefix = path.join(dir, "dovecot.index");
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const append = (uid: number): LogRecord => ({ type: "append", external: true, sync: false, messages: [{ uid, flags: 0 }] });
const seen = (uid: number): LogRecord => ({
  type: "flag-update", external: false, sync: false, updates: [{ uid1: uid, uid2: uid, addFlags: 8, removeFlags: 0, modseqIncFlag: 0 }],
});

describe("stateAt (time travel)", () => {
  it("gives the state after each transaction, refuses positions inside one or past the end", async () => {
    const log = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    const ends: LogPosition[] = [];
    for (const tx of [[append(1), append(2)], [seen(1)], [append(3)]]) ends.push((await log.append(tx)).end);
    await log.close();

    expect(messageCount(stateAt(prefix, ends[0]))).toBe(2);
    expect(lookupUid(stateAt(prefix, ends[0]), 1)!.flags & 8).toBe(0);
    expect(lookupUid(stateAt(prefix, ends[1]), 1)!.flags & 8).toBe(8);
    expect(messageCount(stateAt(prefix, ends[2]))).toBe(3);
    expect(position(stateAt(prefix, ends[2]))).toEqual(position(loadState(prefix)));

    const inside = { fileSeq: ends[0].fileSeq, offset: ends[0].offset + 4 };
    expect(() => stateAt(prefix, inside)).toThrow(/inside a transaction/);
    const future = { fileSeq: ends[2].fileSeq, offset: ends[2].offset + 1000 };
    expect(() => stateAt(prefix, future)).toThrow(LogPositionLostError);
    expect(() => stateAt(prefix, future)).toThrow(/past the end of the log/);
    // 1:0 (inside the header) of a log that starts empty: its start, the empty mailbox (as `diff DIR 1:0` means it).
    expect(messageCount(stateAt(prefix, { fileSeq: ends[0].fileSeq, offset: 0 }))).toBe(0);
  });
});

describe("an unreadable dovecot.index", () => {
  it("is no worse than a missing one while the log reaches back to its start; otherwise the error says rebuild", async () => {
    const log = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    await log.append([append(1), append(2)]);
    await log.append([seen(2)]);
    const full = loadState(prefix);
    fs.writeFileSync(prefix, Buffer.alloc(300, 0xa5));
    expect(position(loadState(prefix))).toEqual(position(full));
    expect(lookupUid(loadState(prefix), 2)!.flags & 8).toBe(8);

    // Rotated, and the older file gone: only a checkpoint could say what came before.
    await log.rotate();
    await log.append([append(3)]);
    await log.close();
    fs.rmSync(prefix + ".log.2");
    expect(() => loadState(prefix)).toThrow(/dovecot\.index is unreadable .*force-resync/);
  });
});
