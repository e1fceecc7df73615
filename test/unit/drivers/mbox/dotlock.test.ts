import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { acquireDotlock } from "../../../../src/drivers/mbox/dotlock.js";
import { LockTimeoutError } from "../../../../src/shared/errors.js";

describe("mbox dotlocks", () => {
  let dir: string;
  let mbox: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "dotlock-"));
    mbox = path.join(dir, "inbox");
    fs.writeFileSync(mbox, "");
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("writes <pid>:<hostname> and removes the lock on release", async () => {
    const lock = await acquireDotlock(mbox, { timeoutMs: 100 });
    expect(fs.readFileSync(mbox + ".lock", "utf8")).toBe(`${process.pid}:${os.hostname()}`);
    lock.release();
    expect(fs.existsSync(mbox + ".lock")).toBe(false);
  });

  it("waits for a live holder, then times out", async () => {
    const child = spawn("sleep", ["5"]);
    try {
      fs.writeFileSync(mbox + ".lock", `${child.pid}:${os.hostname()}`);
      await expect(acquireDotlock(mbox, { timeoutMs: 150 })).rejects.toBeInstanceOf(LockTimeoutError);
    } finally {
      child.kill();
    }
  });

  it("breaks a lock whose process is gone, and one untouched for too long", async () => {
    const child = spawn("true");
    await new Promise((r) => child.on("exit", r));
    fs.writeFileSync(mbox + ".lock", `${child.pid}:${os.hostname()}`);
    (await acquireDotlock(mbox, { timeoutMs: 100 })).release();
    fs.writeFileSync(mbox + ".lock", "garbage");
    const old = new Date(Date.now() - 10_000);
    fs.utimesSync(mbox + ".lock", old, old);
    (await acquireDotlock(mbox, { timeoutMs: 100, staleMs: 5_000 })).release();
  });
});
