/**
 * The log layer under a lost or misplaced fcntl lock. A POSIX lock belongs to
 * the process and is dropped when it closes ANY descriptor of the file, so a
 * stray open+close of dovecot.index.log inside a commit (as Maildir sync once
 * did) leaves the engine writing without a lock. These tests play the other
 * process with test/workers/log-lock-worker.mjs and check that the engine
 * then refuses to write instead of destroying the other writer's bytes, that
 * a read never cuts a tail, and that a rotation inside a lock scope keeps the
 * new head locked until the scope ends, and unlocked after it.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TransactionLog } from "../../../src/log/log.js";
import { LogLockLostError } from "../../../src/log/lock.js";
import { readLog } from "../../../src/log/view.js";
import { encodeTransaction } from "../../../src/log/encode-file.js";
import type { LogRecord } from "../../../src/log/types.js";

const WORKER = fileURLToPath(new URL("../../workers/log-lock-worker.mjs", import.meta.url));

let dir: string;
let prefix: string;
let logPath: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-lockloss-"));
  prefix = path.join(dir, "dovecot.index");
  logPath = prefix + ".log";
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const append = (uid: number): LogRecord => ({ type: "append", external: true, sync: false, messages: [{ uid, flags: 0 }] });
const seen = (uid: number): LogRecord => ({
  type: "flag-update", external: false, sync: false,
  updates: [{ uid1: uid, uid2: uid, addFlags: 8, removeFlags: 0, modseqIncFlag: 0 }],
});
const hexOf = (records: LogRecord[]): string => Buffer.from(encodeTransaction(records)).toString("hex");

/** What the maildir sync bug did: open and close another descriptor of the locked log. */
function strayClose(): void {
  fs.closeSync(fs.openSync(logPath, "r"));
}

interface Worker {
  child: ChildProcessWithoutNullStreams;
  /** Resolves with the worker's stdout once it printed `word`. */
  waitFor(word: string): Promise<string>;
  exited: Promise<number | null>;
}

function startWorker(...args: string[]): Worker {
  const child = spawn(process.execPath, [WORKER, logPath, ...args], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const waiters: Array<() => void> = [];
  child.stdout.on("data", (d) => {
    out += d;
    for (const w of waiters.splice(0)) w();
  });
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => {
    resolve(code);
    for (const w of waiters.splice(0)) w();
  }));
  return {
    child,
    exited,
    waitFor: (word) => new Promise<string>((resolve, reject) => {
      const check = (): void => {
        if (out.includes(word)) resolve(out);
        else if (child.exitCode !== null) reject(new Error(`worker exited (${child.exitCode}) before "${word}": ${out} ${err}`));
        else waiters.push(check);
      };
      check();
    }),
  };
}

async function probeLock(): Promise<string> {
  const w = startWorker("probe");
  const out = await w.waitFor("\n");
  await w.exited;
  return out.trim();
}

describe("TransactionLog when its fcntl lock is lost", () => {
  it("refuses to write while another process holds the lock it lost, leaving that writer's transaction whole", async () => {
    const log = TransactionLog.open(prefix, { create: {}, fsync: "never", lockTimeoutMs: 10_000 });
    await log.append([append(1)]);
    const theirs = hexOf([append(2), seen(2)]);
    let worker!: Worker;
    const commit = log.transact(async () => {
      strayClose();
      // The other process now gets the lock and is half-way through its write.
      worker = startWorker("locked-torn", theirs, "10");
      await worker.waitFor("ready");
      return [[seen(1)]];
    });
    await expect(commit).rejects.toThrow(LogLockLostError);
    worker.child.stdin.write("go\n");
    await worker.waitFor("done");
    await worker.exited;
    const after = await log.append([seen(1)]);
    const read = readLog(prefix);
    expect(read.transactions.map((t) => t.entries.map((e) => e.record.type))).toEqual([["append"], ["append", "flag-update"], ["flag-update"]]);
    expect(read.end).toEqual(after.end);
    expect(fs.statSync(logPath).size).toBe(after.end.offset);
    await log.close();
  });

  it("refuses to write after another process appended under the lock it lost (an acknowledged commit would be overwritten)", async () => {
    const log = TransactionLog.open(prefix, { create: {}, fsync: "never", lockTimeoutMs: 10_000 });
    await log.append([append(1)]);
    const commit = log.transact(async () => {
      strayClose();
      const w = startWorker("append", hexOf([append(2)]));
      await w.waitFor("done");
      await w.exited;
      return [[seen(1)]];
    });
    await expect(commit).rejects.toThrow(LogLockLostError);
    await log.append([seen(1)]);
    const uids = readLog(prefix).transactions.map((t) => t.entries.map((e) => e.record.type).join("+"));
    expect(uids).toEqual(["append", "append", "flag-update"]);
    await log.close();
  });

  it("never cuts bytes after the last complete transaction when only reading (refresh): they may be a write in progress", async () => {
    const log = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    const first = await log.append([append(1)]);
    // A writer whose own lock was lost: it writes without holding it.
    const w = startWorker("unlocked-torn", hexOf([append(2), seen(2)]), "14");
    await w.waitFor("ready");
    expect(await log.refresh()).toEqual(first.end);
    expect(fs.statSync(logPath).size).toBe(first.end.offset + 14);
    w.child.stdin.write("go\n");
    await w.waitFor("done");
    await w.exited;
    expect(readLog(prefix).transactions).toHaveLength(2);
    await log.close();
  });

  it("does not cut a tail that grew while it held the lock", async () => {
    const log = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    const first = await log.append([append(1)]);
    fs.appendFileSync(logPath, Buffer.from([0x80, 0x80, 0x80, 0x90, 2, 0, 0, 0, 9]));
    const commit = log.transact(async () => {
      fs.appendFileSync(logPath, Buffer.from([1, 2, 3]));
      return [[append(2)]];
    });
    await expect(commit).rejects.toThrow(LogLockLostError);
    expect(fs.statSync(logPath).size).toBe(first.end.offset + 12);
    await log.close();
  });

  it("cuts a crashed writer's torn tail once the lock is confirmed, then appends", async () => {
    const log = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    const first = await log.append([append(1)]);
    const w = startWorker("locked-torn", hexOf([append(2), seen(2)]), "14");
    await w.waitFor("ready");
    w.child.kill("SIGKILL"); // dies holding the lock half-way: the kernel drops its lock
    await w.exited;
    const next = await log.append([append(3)]);
    expect(next.start).toEqual(first.end);
    expect(fs.statSync(logPath).size).toBe(next.end.offset);
    await log.close();
  });
});

describe("rotation inside a lock scope", () => {
  it("a sibling object's rotation is followed inside the scope, and the new head is unlocked when the scope ends", async () => {
    const outer = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    const nested = TransactionLog.open(prefix, { fsync: "never" });
    await outer.append([append(1)]);
    await outer.holdLock(async () => {
      // The mdbox map: the outer object holds the lock, the nested one commits and rotates.
      await nested.append([append(2)]);
      await nested.rotateLocked();
      expect(await probeLock()).toBe("locked");
      // The outer object must write to the new head, not to the rotated file.
      const r = await outer.append([append(3)]);
      expect(r.start).toEqual({ fileSeq: 2, offset: 40 });
    });
    expect(await probeLock()).toBe("free");
    const read = readLog(prefix);
    expect(read.transactions.map((t) => t.position.fileSeq)).toEqual([1, 1, 2]);
    await outer.append([append(4)]);
    expect(readLog(prefix).transactions).toHaveLength(4);
    await outer.close();
    await nested.close();
  });

  it("rotateLocked keeps the new head locked until the transaction's scope ends, then releases it", async () => {
    const log = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    await log.append([append(1)]);
    await log.transact(async () => {
      await log.rotateLocked();
      expect(await probeLock()).toBe("locked");
      return [[append(2)]];
    });
    expect(await probeLock()).toBe("free");
    expect(readLog(prefix).transactions.map((t) => t.position)).toEqual([{ fileSeq: 1, offset: 40 }, { fileSeq: 2, offset: 40 }]);
    await log.close();
  });
});

describe("a lock let go before its scope ends (holdLock's release)", () => {
  it("frees the file for other processes and for this process's other call chains while the scope runs on; a write after it locks again", async () => {
    const log = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    const sibling = TransactionLog.open(prefix, { fsync: "never" });
    await log.append([append(1)]);
    await log.holdLock(async (release) => {
      expect(await probeLock()).toBe("locked");
      await release();
      expect(await probeLock()).toBe("free");
      // Another object of this process writes before this scope ends: it takes the lock (the in-process mutex was let go too), as this
      // chain holds it no more; and so does this chain's own next write.
      await sibling.append([append(2)]);
      const r = await log.append([append(3)]);
      expect(r.start.offset).toBeGreaterThan(40);
      await release();
    });
    expect(await probeLock()).toBe("free");
    expect(readLog(prefix).transactions).toHaveLength(3);
    await log.close();
    await sibling.close();
  });

  it("is a no-op where an outer scope holds the lock (a commit inside a purge): the outer scope keeps it", async () => {
    const outer = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    const nested = TransactionLog.open(prefix, { fsync: "never" });
    await outer.holdLock(async () => {
      await nested.holdLock(async (release) => {
        await release();
        expect(await probeLock()).toBe("locked");
        await nested.append([append(1)]);
      });
      expect(await probeLock()).toBe("locked");
    });
    expect(await probeLock()).toBe("free");
    await outer.close();
    await nested.close();
  });
});
