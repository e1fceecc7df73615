import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStorage, TransactionLog, type ChangeBatch, type Storage } from "../../../src/index.js";

let dir: string;
let storage: Storage;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-subs-"));
  storage = openStorage(`sdbox:${dir}/mail`, { fsync: "never" });
});
afterEach(async () => {
  await storage.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function timeCommits(box: Awaited<ReturnType<Storage["openMailbox"]>>, n: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await box.transaction().flags([{ uid1: 1, uid2: 1 }], i % 2 ? "remove" : "add", ["\\Seen"]).commit();
  return (performance.now() - t0) / n;
}

describe("change-stream subscribers", () => {
  it("1,000 subscribers slow commits by less than 2×, all receive every batch, and unsubscribing releases the watch", async () => {
    const box = await storage.openMailbox("INBOX");
    await box.transaction().append({ body: "Subject: x\n\ny\n" }).commit();
    await timeCommits(box, 50); // warm up
    // Alternate rounds without and with 1,000 subscribers and compare medians:
    // the machines are shared, and alternating spreads their noise over both.
    const alone: number[] = [];
    const crowded: number[] = [];
    const received = new Array<number>(1000).fill(0);
    for (let round = 0; round < 5; round++) {
      alone.push(await timeCommits(box, 100));
      const subs = received.map((_, i) => box.changes().subscribe(() => void received[i]++));
      expect(box.liveSubscribers).toBe(1000);
      crowded.push(await timeCommits(box, 100));
      await new Promise((r) => setTimeout(r, 10));
      for (const s of subs) s.unsubscribe();
    }
    expect(received.every((n) => n === 500)).toBe(true);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[2];
    const ratio = median(crowded) / median(alone);
    console.log(`commit ${median(alone).toFixed(3)} ms alone, ${median(crowded).toFixed(3)} ms with 1,000 subscribers (${ratio.toFixed(2)}×)`);
    expect(ratio).toBeLessThan(2);
    expect(box.liveSubscribers).toBe(0);
    expect((box as unknown as { externalFollow?: unknown }).externalFollow).toBeUndefined();
  });

  it("resuming from a position yields exactly the transactions after it, none twice", async () => {
    const box = await storage.openMailbox("INBOX");
    const first = await box.transaction().append({ body: "Subject: 1\n\n1\n" }).commit();
    const ends = [];
    for (let i = 0; i < 5; i++) ends.push((await box.transaction().flags([{ uid1: 1, uid2: 1 }], i % 2 ? "remove" : "add", ["\\Flagged"]).commit()).end);
    const got: ChangeBatch[] = [];
    const sub = box.changes(first.end).subscribe((b) => got.push(b));
    await box.transaction().append({ body: "Subject: 2\n\n2\n" }).commit();
    await new Promise((r) => setTimeout(r, 30));
    sub.unsubscribe();
    expect(got.map((b) => b.end)).toEqual([...ends, box.position]);
    expect(got.at(-1)!.changes[0]).toMatchObject({ type: "append", uid: 2 });
  });

  it("cuts off a subscriber that falls too far behind, telling it where to resume", async () => {
    const reader = openStorage(`sdbox:${dir}/mail`, { fsync: "never", subscriberBufferMax: 3 });
    const box = await reader.openMailbox("INBOX");
    let error: unknown;
    const before = box.position;
    box.changes().subscribe({ error: (e) => (error = e) });
    // Another process appends five transactions in one write; the reader catches up with all at once.
    const other = TransactionLog.open(box.backend.indexPrefix, { fsync: "never" });
    await other.appendTransactions([1, 2, 3, 4, 5].map((uid) => [{ type: "flag-update" as const, external: false, sync: false, updates: [{ uid1: 1, uid2: 1, addFlags: uid % 2 ? 8 : 0, removeFlags: uid % 2 ? 0 : 8, modseqIncFlag: 0 }] }]));
    await other.close();
    await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 20));
    expect(error).toMatchObject({ code: "SUBSCRIBER_OVERFLOW", resumeFrom: before });
    await reader.close();
  });
});

describe("closing", () => {
  it("releases every file handle, lock and watch", async () => {
    const fds = () => fs.readdirSync("/proc/self/fd").length;
    const s = openStorage(`sdbox:${dir}/closing`, { fsync: "never" });
    const warm = await s.openMailbox("INBOX");
    await warm.transaction().append({ body: "Subject: 0\n\n0\n" }).commit();
    await s.close();
    const before = fds();
    const storage2 = openStorage(`sdbox:${dir}/closing`, { fsync: "never" });
    const a = await storage2.openMailbox("INBOX");
    await storage2.createMailbox("Other");
    const b = await storage2.openMailbox("Other");
    const subs = [a.changes().subscribe(), b.changes().subscribe(), a.changes({ fileSeq: 1, offset: 40 }).subscribe()];
    await a.transaction().append({ body: "Subject: 1\n\n1\n" }).commit();
    await a.transaction().copyTo(b, [{ uid1: 1, uid2: 2 }]);
    expect(fds()).toBeGreaterThan(before);
    void subs;
    await storage2.close();
    expect(fds()).toBe(before);
  });
});
