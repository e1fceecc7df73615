import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { firstValueFrom, take, toArray } from "rxjs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { followLog } from "../../../src/log/follow.js";
import { TransactionLog } from "../../../src/log/log.js";
import type { LogRecord, LogTransaction } from "../../../src/log/types.js";

let dir: string;
let prefix: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-follow-"));
  prefix = path.join(dir, "dovecot.index");
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const append = (uid: number): LogRecord => ({ type: "append", external: true, sync: false, messages: [{ uid, flags: 0 }] });
const uidOf = (tx: LogTransaction) => (tx.entries[0].record.type === "append" ? tx.entries[0].record.messages[0].uid : -1);

describe("followLog", () => {
  it("replays the backlog from a position, then delivers new commits in order across a rotation", async () => {
    const log = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    const first = await log.append([append(1)]);
    await log.append([append(2)]);
    const seen = firstValueFrom(followLog(prefix, first.end).pipe(take(5), toArray()));
    await new Promise((r) => setTimeout(r, 20));
    await log.append([append(3)]);
    await log.append([append(4)]);
    await log.rotate();
    await log.append([append(5)]);
    await log.append([append(6)]);
    const txs = await seen;
    expect(txs.map(uidOf)).toEqual([2, 3, 4, 5, 6]);
    expect(txs.map((t) => t.position.fileSeq)).toEqual([1, 1, 1, 2, 2]);
    expect(txs.map((t) => t.modseq)).toEqual([3n, 4n, 5n, 6n, 7n]);
    await log.close();
  });

  it("from a position with its modseq (read from there only), delivers what it does without it, modseqs included", async () => {
    const log = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    await log.append([append(1)]);
    const second = await log.append([append(2)]);
    await log.append([append(3)]);
    const tail = firstValueFrom(followLog(prefix, second.end, second.modseq).pipe(take(2), toArray()));
    const whole = firstValueFrom(followLog(prefix, second.end).pipe(take(2), toArray()));
    await log.append([append(4)]);
    const [fromTail, fromWhole] = await Promise.all([tail, whole]);
    expect(fromTail.map(uidOf)).toEqual([3, 4]);
    expect(fromTail.map((t) => [t.position, t.end, t.modseq])).toEqual(fromWhole.map((t) => [t.position, t.end, t.modseq]));
    await log.close();
  });

  it("errors with a typed error when the position was rotated away, and releases the watch on unsubscribe", async () => {
    const log = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    await log.append([append(1)]);
    await log.rotate();
    await log.rotate();
    await expect(firstValueFrom(followLog(prefix, { fileSeq: 1, offset: 40 }))).rejects.toMatchObject({ code: "LOG_POSITION_LOST" });
    const sub = followLog(prefix, log.headPosition).subscribe();
    sub.unsubscribe();
    await log.close();
  });
});
