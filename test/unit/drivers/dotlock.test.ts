import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DotlockLostError, takeDotlock, type DotlockOptions } from "../../../src/drivers/dotlock.js";
import { LockTimeoutError } from "../../../src/shared/errors.js";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-dotlock-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** How the drivers take their locks (maildir/context.ts and keywords-table.ts; mbox/mbox-file.ts). */
const ways: Array<{ name: string; opts: DotlockOptions }> = [
  { name: "Maildir's options", opts: {} },
  { name: "mbox's options", opts: { mode: 0o600, maxPollMs: 100 } },
];

describe.each(ways)("Dovecot dotlocks, with $name", ({ opts }) => {
  let target: string;
  beforeEach(() => {
    target = path.join(dir, "dovecot-uidlist");
  });

  it("creates <file>.lock holding pid:host, and removes it on release", async () => {
    const lock = await takeDotlock(target, opts);
    expect(lock.lockPath).toBe(`${target}.lock`);
    expect(fs.readFileSync(`${target}.lock`, "utf8")).toBe(`${process.pid}:${os.hostname()}`);
    expect(lock.brokeStale).toBe(false);
    expect(fs.readdirSync(dir)).toEqual(["dovecot-uidlist.lock"]); // no temporary file left
    lock.release();
    expect(fs.existsSync(`${target}.lock`)).toBe(false);
    lock.release(); // idempotent
  });

  it("waits for a live holder, then times out", async () => {
    fs.writeFileSync(`${target}.lock`, `1:${os.hostname()}`); // pid 1 is alive
    const t0 = Date.now();
    await expect(takeDotlock(target, { ...opts, timeoutMs: 150 })).rejects.toBeInstanceOf(LockTimeoutError);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(fs.readFileSync(`${target}.lock`, "utf8")).toBe(`1:${os.hostname()}`);
    expect(fs.readdirSync(dir)).toEqual(["dovecot-uidlist.lock"]);
  });

  it("waits for a live child process holding it, then times out", async () => {
    const child = spawn("sleep", ["5"]);
    try {
      fs.writeFileSync(`${target}.lock`, `${child.pid}:${os.hostname()}`);
      await expect(takeDotlock(target, { ...opts, timeoutMs: 150 })).rejects.toBeInstanceOf(LockTimeoutError);
    } finally {
      child.kill();
    }
  });

  it("with timeoutMs 0 only tries once", async () => {
    fs.writeFileSync(`${target}.lock`, `1:${os.hostname()}`);
    const t0 = Date.now();
    await expect(takeDotlock(target, { ...opts, timeoutMs: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
    expect(Date.now() - t0).toBeLessThan(100);
  });

  it("gets the lock as soon as the holder releases it", async () => {
    const first = await takeDotlock(target, opts);
    setTimeout(() => first.release(), 60);
    const second = await takeDotlock(target, { ...opts, timeoutMs: 2000 });
    second.release();
  });

  it("does not break a lock of its own pid (another async chain of this process holds it)", async () => {
    fs.writeFileSync(`${target}.lock`, `${process.pid}:${os.hostname()}`);
    await expect(takeDotlock(target, { ...opts, timeoutMs: 50 })).rejects.toBeInstanceOf(LockTimeoutError);
  });

  it("breaks the lock of a dead process of this host, and a lock untouched for the stale time", async () => {
    fs.writeFileSync(`${target}.lock`, `2147483646:${os.hostname()}`);
    let lock = await takeDotlock(target, { ...opts, timeoutMs: 100 });
    expect(lock.brokeStale).toBe(true);
    lock.release();
    fs.writeFileSync(`${target}.lock`, "1:elsewhere");
    const old = new Date(Date.now() - 200_000);
    fs.utimesSync(`${target}.lock`, old, old);
    lock = await takeDotlock(target, { ...opts, timeoutMs: 100 });
    expect(lock.brokeStale).toBe(true);
    lock.release();
  });

  it("breaks a lock whose process is gone, and one untouched for too long", async () => {
    const child = spawn("true");
    await new Promise((r) => child.on("exit", r));
    fs.writeFileSync(`${target}.lock`, `${child.pid}:${os.hostname()}`);
    (await takeDotlock(target, { ...opts, timeoutMs: 100 })).release();
    fs.writeFileSync(`${target}.lock`, "garbage");
    const old = new Date(Date.now() - 10_000);
    fs.utimesSync(`${target}.lock`, old, old);
    (await takeDotlock(target, { ...opts, timeoutMs: 100, staleMs: 5_000 })).release();
  });

  it("judges a lock naming no pid of this host by its age alone", async () => {
    for (const content of ["", "1:elsewhere", `99999999999:${os.hostname()}`, "garbage"]) {
      fs.writeFileSync(`${target}.lock`, content);
      await expect(takeDotlock(target, { ...opts, timeoutMs: 50 })).rejects.toBeInstanceOf(LockTimeoutError);
      const old = new Date(Date.now() - 10_000);
      fs.utimesSync(`${target}.lock`, old, old);
      const lock = await takeDotlock(target, { ...opts, timeoutMs: 50, staleMs: 5_000 });
      expect(lock.brokeStale).toBe(true);
      lock.release();
    }
  });

  it("replaceTarget renames the lock file with the new content over the target", async () => {
    fs.writeFileSync(target, "old\n");
    const before = Math.floor(fs.statSync(target).mtimeMs / 1000);
    const lock = await takeDotlock(target, opts);
    lock.replaceTarget("new\n", { mtimeAfterSecs: before });
    expect(fs.readFileSync(target, "utf8")).toBe("new\n");
    expect(fs.readdirSync(dir)).toEqual(["dovecot-uidlist"]); // no temporary file left
    expect(Math.floor(fs.statSync(target).mtimeMs / 1000)).toBeGreaterThan(before);
    expect(fs.existsSync(`${target}.lock`)).toBe(false);
    expect(() => lock.replaceTarget("again\n")).toThrow(/not held/);
    lock.release(); // nothing left to release
    expect(fs.readFileSync(target, "utf8")).toBe("new\n");
  });

  it("replaceTarget leaves alone a lock another process overrode, and removes its own when the rename fails", async () => {
    fs.writeFileSync(target, "old\n");
    let lock = await takeDotlock(target, opts);
    // Judged stale and replaced by another process meanwhile.
    fs.rmSync(`${target}.lock`);
    fs.writeFileSync(`${target}.lock`, "other:host");
    expect(() => lock.replaceTarget("new\n")).toThrow(DotlockLostError);
    expect(fs.readFileSync(`${target}.lock`, "utf8")).toBe("other:host");
    expect(fs.readFileSync(target, "utf8")).toBe("old\n");
    fs.rmSync(`${target}.lock`);
    // A rename that fails (the target became a directory): our half-written lock does not stay behind.
    lock = await takeDotlock(target, opts);
    fs.rmSync(target);
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, "x"), "");
    expect(() => lock.replaceTarget("new\n")).toThrow();
    expect(fs.existsSync(`${target}.lock`)).toBe(false);
    expect(fs.readdirSync(dir)).toEqual(["dovecot-uidlist"]);
  });

  it("replaceTarget removes the replacement files of dead holders whose lock is gone, and no one else's", async () => {
    const child = spawn("true");
    await new Promise((r) => child.on("exit", r));
    const host = os.hostname();
    fs.writeFileSync(target, "old\n");
    const dead = `.dovecot-uidlist.${host}.${child.pid}.new`;
    const alive = `.dovecot-uidlist.${host}.1.new`;
    const elsewhere = `.dovecot-uidlist.otherhost.${child.pid}.new`;
    for (const f of [dead, alive, elsewhere]) fs.writeFileSync(path.join(dir, f), "half");
    (await takeDotlock(target, opts)).replaceTarget("new\n");
    expect(fs.readdirSync(dir).sort()).toEqual([alive, elsewhere, "dovecot-uidlist"].sort());
  });

  it("breaking the lock of a dead holder also removes the temporary files it was writing", async () => {
    const child = spawn("true");
    await new Promise((r) => child.on("exit", r));
    const host = os.hostname();
    fs.writeFileSync(`${target}.lock`, `${child.pid}:${host}`);
    const leftovers = [`.dovecot-uidlist.lock.${host}.${child.pid}.tmp`, `.dovecot-uidlist.${host}.${child.pid}.new`];
    const someoneElses = `.dovecot-uidlist.${host}.${child.pid! + 1}.new`;
    for (const f of [...leftovers, someoneElses]) fs.writeFileSync(path.join(dir, f), "half");
    const lock = await takeDotlock(target, { ...opts, timeoutMs: 100 });
    expect(lock.brokeStale).toBe(true);
    expect(fs.readdirSync(dir).sort()).toEqual([someoneElses, "dovecot-uidlist.lock"].sort());
    lock.release();
  });

  it("does not delete a lock someone else took over", async () => {
    const lock = await takeDotlock(target, opts);
    fs.rmSync(`${target}.lock`);
    fs.writeFileSync(`${target}.lock`, "1:other");
    lock.release();
    expect(fs.readFileSync(`${target}.lock`, "utf8")).toBe("1:other");
  });

  it("does not delete its lock rewritten in place by someone else (same inode, other content)", async () => {
    const lock = await takeDotlock(target, opts);
    fs.writeFileSync(`${target}.lock`, "1:other");
    lock.release();
    expect(fs.readFileSync(`${target}.lock`, "utf8")).toBe("1:other");
  });

  it("touch() keeps a held lock fresh, and leaves a lock someone else took over alone", async () => {
    const lock = await takeDotlock(target, opts);
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(`${target}.lock`, old, old);
    lock.touch();
    expect(Date.now() - fs.statSync(`${target}.lock`).mtimeMs).toBeLessThan(5_000);
    fs.rmSync(`${target}.lock`);
    lock.touch(); // gone: nothing to do
    fs.writeFileSync(`${target}.lock`, "1:other");
    fs.utimesSync(`${target}.lock`, old, old);
    lock.touch();
    expect(Math.round(fs.statSync(`${target}.lock`).mtimeMs / 1000)).toBe(Math.round(old.getTime() / 1000));
    lock.release();
    lock.touch(); // released: nothing to do
  });

  it("creates the lock file with the directory's read/write bits at most (Dovecot's file_create_mode), not narrowed by the umask (as Dovecot)", async () => {
    const wanted = opts.mode ?? 0o666; // takeDotlock's default
    for (const dirMode of [0o755, 0o700, 0o770, 0o777]) {
      const sub = path.join(dir, dirMode.toString(8));
      fs.mkdirSync(sub);
      fs.chmodSync(sub, dirMode);
      const lock = await takeDotlock(path.join(sub, "file"), opts);
      expect(fs.statSync(lock.lockPath).mode & 0o777).toBe(wanted & ((dirMode & 0o666) | 0o600));
      lock.release();
    }
  });
});

describe("dotlock options", () => {
  it("touchEveryMs touches the held lock (Maildir's MAILDIR_LOCK_TOUCH_SECS), until released", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    try {
      const target = path.join(dir, "dovecot-uidlist");
      const lock = await takeDotlock(target, { touchEveryMs: 10_000 });
      const old = new Date(Date.now() - 60_000);
      fs.utimesSync(lock.lockPath, old, old);
      vi.advanceTimersByTime(10_000);
      expect(Date.now() - fs.statSync(lock.lockPath).mtimeMs).toBeLessThan(5_000);
      lock.release();
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it("without touchEveryMs nothing touches the lock by itself", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    try {
      const lock = await takeDotlock(path.join(dir, "inbox"), { mode: 0o600 });
      expect(vi.getTimerCount()).toBe(0);
      lock.release();
    } finally {
      vi.useRealTimers();
    }
  });

  it("replaces a leftover temporary file of a process that had our pid", async () => {
    const mbox = path.join(dir, "inbox");
    const tmp = path.join(dir, `.inbox.lock.${os.hostname()}.${process.pid}.tmp`);
    fs.writeFileSync(tmp, "stale leftover", { mode: 0o666 });
    fs.chmodSync(tmp, 0o666);
    const lock = await takeDotlock(mbox, { mode: 0o600 });
    expect(fs.existsSync(tmp)).toBe(false);
    expect(fs.readFileSync(lock.lockPath, "utf8")).toBe(`${process.pid}:${os.hostname()}`);
    expect(fs.statSync(lock.lockPath).mode & 0o777).toBe(0o600 & ~process.umask());
    lock.release();
  });

  it("fails with the file system's error when the directory is missing", async () => {
    await expect(takeDotlock(path.join(dir, "missing", "file"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});
