import * as fs from "node:fs";
import { createRequire, syncBuiltinESMExports } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStorage, TransactionLog, type ChangeBatch, type LogPosition, type Storage } from "../../../src/index.js";
import { ChangeFanout } from "../../../src/api/subscribers.js";

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

type Box = Awaited<ReturnType<Storage["openMailbox"]>>;

const fsModule = createRequire(import.meta.url)("node:fs") as typeof fs;
const key = (p: LogPosition): string => `${p.fileSeq}:${p.offset}`;
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Counts the watchers fs.watch opens (the change streams' log watch) and
 * which of them are still open, through node:fs's exports, which the
 * engine's modules share with the test. @returns the undo.
 */
function countWatches(open: Set<fs.FSWatcher>, opened: { count: number }): () => void {
  const real = fsModule.watch;
  fsModule.watch = ((...args: Parameters<typeof fs.watch>) => {
    const watcher = (real as (...a: Parameters<typeof fs.watch>) => fs.FSWatcher)(...args);
    opened.count++;
    open.add(watcher);
    const close = watcher.close.bind(watcher);
    watcher.close = () => {
      open.delete(watcher);
      close();
    };
    return watcher;
  }) as typeof fs.watch;
  syncBuiltinESMExports();
  return () => {
    fsModule.watch = real;
    syncBuiltinESMExports();
  };
}

/**
 * What the fan-out does with the batches published to it, counted without a
 * clock: every published batch is handed on as a proxy that counts the
 * property reads made outside subscriber code (the fan-out looking at it),
 * separately for reads inside publish() (the commit's share); subscriber
 * code that runs inside publish() is counted too.
 */
class FanoutProbe {
  /** Reads of published batches by non-subscriber code, in all. */
  reads = 0;
  /** The part of `reads` made inside publish(), i.e. inside a commit. */
  publishReads = 0;
  /** Subscriber callbacks that ran inside publish(), i.e. inside a commit. */
  calledInPublish = 0;
  /** Batches published. */
  published = 0;
  private publishing = false;
  private inSubscriber = false;

  /** Wraps ChangeFanout.prototype.publish (one module instance with the engine's). @returns the undo. */
  install(): () => void {
    const real = ChangeFanout.prototype.publish;
    const probe = this;
    ChangeFanout.prototype.publish = function (this: ChangeFanout, batch: ChangeBatch): void {
      const counted = new Proxy(batch, {
        get(target, prop, receiver) {
          if (!probe.inSubscriber) {
            probe.reads++;
            if (probe.publishing) probe.publishReads++;
          }
          return Reflect.get(target, prop, receiver) as unknown;
        },
      });
      probe.published++;
      probe.publishing = true;
      try {
        real.call(this, counted);
      } finally {
        probe.publishing = false;
      }
    };
    return () => {
      ChangeFanout.prototype.publish = real;
    };
  }

  /** Wraps a subscriber's callback so that its reads are not counted as the fan-out's. */
  subscriber(fn: (b: ChangeBatch) => void): (b: ChangeBatch) => void {
    return (b) => {
      if (this.publishing) this.calledInPublish++;
      this.inSubscriber = true;
      try {
        fn(b);
      } finally {
        this.inSubscriber = false;
      }
    };
  }
}

describe("change-stream subscribers", () => {
  // What made 1,000 subscribers cheap for a commit, checked by counting
  // instead of timing (the timing is in bench/api/notify-latency.bench.ts):
  // publishing runs no subscriber code and does what it does with one
  // subscriber; the fan-out's work per batch is at most N times what it is
  // for one subscriber, however long the history before it; one log watch
  // serves them all and goes with the last one.
  it("1,000 subscribers: a commit runs no subscriber code, the fan-out's work per batch is at most N times one subscriber's whatever the history, all receive every batch once and in order, and they share one log watch that unsubscribing releases", async () => {
    const N = 1000;
    const ROUNDS = 5;
    const COMMITS = 100;
    const probe = new FanoutProbe();
    const openWatches = new Set<fs.FSWatcher>();
    const watchesOpened = { count: 0 };
    const undo = [probe.install(), countWatches(openWatches, watchesOpened)];
    try {
      const box = await storage.openMailbox("INBOX");
      await box.transaction().append({ body: "Subject: x\n\ny\n" }).commit();
      let flips = 0;
      const flip = (b: Box) => b.transaction().flags([{ uid1: 1, uid2: 1 }], flips++ % 2 ? "remove" : "add", ["\\Seen"]).commit();
      /**
       * One commit, then the turn of the event loop the fan-out drains on.
       * @returns where it ended, and the fan-out's reads for it (in all and in publish()).
       */
      const commitAndDrain = async (b: Box) => {
        const [reads, publishReads] = [probe.reads, probe.publishReads];
        const { end } = await flip(b);
        await nextTurn();
        return { end: key(end), reads: probe.reads - reads, publishReads: probe.publishReads - publishReads };
      };
      const followed = () => (box as unknown as { externalFollow?: unknown }).externalFollow;

      // One subscriber, with a short history: the cost of one member.
      const oneGot: string[] = [];
      const one = box.changes().subscribe(probe.subscriber((b) => oneGot.push(key(b.end))));
      const watchesForOne = watchesOpened.count;
      expect(watchesForOne, "subscribing opened no fs.watch: the watch count sees nothing").toBeGreaterThanOrEqual(1);
      const alone = [];
      for (let i = 0; i < 10; i++) alone.push(await commitAndDrain(box));
      one.unsubscribe();
      expect(oneGot).toEqual(alone.map((c) => c.end));
      const perBatchForOne = Math.max(...alone.map((c) => c.reads));
      const publishReadsForOne = Math.max(...alone.map((c) => c.publishReads));
      expect(perBatchForOne, "the fan-out never looked at a batch: the read count sees nothing").toBeGreaterThan(0);
      expect(openWatches.size, "watches left open after the one subscriber left").toBe(0);

      // Rounds with N subscribers, between rounds commits with none: the history grows.
      const got = Array.from({ length: N }, () => [] as string[]);
      /** Batches published before subscriber 0 got each of its batches. */
      const publishedAtDelivery: number[] = [];
      const expected: string[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const openedBefore = watchesOpened.count;
        const subs = got.map((list, i) => box.changes().subscribe(probe.subscriber((b) => {
          if (i === 0) publishedAtDelivery.push(probe.published);
          list.push(key(b.end));
        })));
        expect(box.liveSubscribers).toBe(N);
        expect(watchesOpened.count - openedBefore, `round ${round}: watches opened for ${N} subscribers`).toBe(watchesForOne);
        expect(openWatches.size, `round ${round}: watches open`).toBe(watchesForOne);
        const roundStart = { reads: probe.reads, published: probe.published, delivered: publishedAtDelivery.length };
        if (round < ROUNDS - 1) {
          for (let i = 0; i < COMMITS; i++) {
            const c = await commitAndDrain(box);
            expected.push(c.end);
            expect(c.publishReads, `round ${round}, commit ${i}: publish() read the batch more often than with one subscriber`).toBeLessThanOrEqual(publishReadsForOne);
            if (c.reads > N * perBatchForOne) expect.fail(`round ${round}, commit ${i}: the fan-out read the batch ${c.reads} times with ${N} subscribers, more than ${N} × ${perBatchForOne} (one subscriber's)`);
          }
        } else {
          // Another writer appends the round's transactions in one write: the
          // mailbox folds them at once, so that one drain carries them all.
          const other = TransactionLog.open(box.backend.indexPrefix, { fsync: "never" });
          const written = await other.appendTransactions(Array.from({ length: COMMITS }, (_, i) => [
            { type: "flag-update" as const, external: false, sync: false, updates: [{ uid1: 1, uid2: 1, addFlags: i % 2 ? 0 : 8, removeFlags: i % 2 ? 8 : 0, modseqIncFlag: 0 }] },
          ]));
          await other.close();
          await box.refresh();
          await nextTurn();
          expected.push(...written.transactions.map((tx) => key(tx.end)));
          expect(publishedAtDelivery[roundStart.delivered] - roundStart.published, "batches published before the first delivery: not one drain for all").toBe(COMMITS);
        }
        expect(probe.reads - roundStart.reads, `round ${round}: the fan-out's reads for ${COMMITS} batches`).toBeLessThanOrEqual(COMMITS * N * perBatchForOne);
        const want = expected.join(" ");
        const wrong = got.flatMap((list, i) => (list.join(" ") === want ? [] : [i]));
        expect(wrong, `round ${round}: subscribers that did not get exactly every batch of their rounds, in order`).toEqual([]);
        for (const sub of subs) sub.unsubscribe();
        expect(box.liveSubscribers).toBe(0);
        expect(followed(), `round ${round}: the log is still followed with no subscriber`).toBeUndefined();
        expect(openWatches.size, `round ${round}: watches left open with no subscriber`).toBe(0);
        // Commits nobody subscribed to: in the history, delivered to no one.
        for (let i = 0; i < COMMITS; i++) await commitAndDrain(box);
      }
      expect(probe.calledInPublish, "subscriber callbacks that ran inside publish(), i.e. inside a commit").toBe(0);
      expect(got[0]).toHaveLength(ROUNDS * COMMITS);
    } finally {
      for (const u of undo.reverse()) u();
    }
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
