import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { takeDotlock } from "../../../../src/drivers/maildir/dotlock.js";
import { LockTimeoutError } from "../../../../src/shared/errors.js";

describe("Dovecot dotlocks", () => {
  let dir: string;
  let target: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-dotlock-"));
    target = path.join(dir, "dovecot-uidlist");
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("creates <file>.lock holding pid:host, and removes it on release", async () => {
    const lock = await takeDotlock(target);
    expect(fs.readFileSync(`${target}.lock`, "utf8")).toBe(`${process.pid}:${os.hostname()}`);
    lock.release();
    expect(fs.existsSync(`${target}.lock`)).toBe(false);
    lock.release(); // idempotent
  });

  it("waits for a live holder, then times out", async () => {
    fs.writeFileSync(`${target}.lock`, `1:${os.hostname()}`); // pid 1 is alive
    const t0 = Date.now();
    await expect(takeDotlock(target, { timeoutMs: 150 })).rejects.toBeInstanceOf(LockTimeoutError);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(fs.readFileSync(`${target}.lock`, "utf8")).toBe(`1:${os.hostname()}`);
  });

  it("gets the lock as soon as the holder releases it", async () => {
    const first = await takeDotlock(target);
    setTimeout(() => first.release(), 60);
    const second = await takeDotlock(target, { timeoutMs: 2000 });
    second.release();
  });

  it("breaks the lock of a dead process of this host, and a lock untouched for the stale time", async () => {
    fs.writeFileSync(`${target}.lock`, `2147483646:${os.hostname()}`);
    (await takeDotlock(target, { timeoutMs: 100 })).release();
    fs.writeFileSync(`${target}.lock`, "1:elsewhere");
    const old = new Date(Date.now() - 200_000);
    fs.utimesSync(`${target}.lock`, old, old);
    (await takeDotlock(target, { timeoutMs: 100 })).release();
  });

  it("replaceTarget renames the lock file with the new content over the target", async () => {
    fs.writeFileSync(target, "old\n");
    const before = Math.floor(fs.statSync(target).mtimeMs / 1000);
    const lock = await takeDotlock(target);
    lock.replaceTarget("new\n", { mtimeAfterSecs: before });
    expect(fs.readFileSync(target, "utf8")).toBe("new\n");
    expect(Math.floor(fs.statSync(target).mtimeMs / 1000)).toBeGreaterThan(before);
    expect(fs.existsSync(`${target}.lock`)).toBe(false);
  });

  it("does not delete a lock someone else took over", async () => {
    const lock = await takeDotlock(target);
    fs.rmSync(`${target}.lock`);
    fs.writeFileSync(`${target}.lock`, "1:other");
    lock.release();
    expect(fs.readFileSync(`${target}.lock`, "utf8")).toBe("1:other");
  });
});
