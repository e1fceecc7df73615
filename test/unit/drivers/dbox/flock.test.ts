import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tryFlockExclusive, unlockFlock } from "../../../../src/drivers/dbox/flock.js";
import { MailstoreError } from "../../../../src/shared/errors.js";

/** util-linux flock(1) stands in for Dovecot: both call flock(2) on the m.N file. */
const haveFlock1 = spawnSync("flock", ["--version"]).status === 0;
/** flock(1)'s exit code for "already locked", chosen with -E. */
const CONFLICT_EXIT = 75;

/** Exit code of `flock -x -n` on `file` from another process: 0 locked (and released), CONFLICT_EXIT held elsewhere. */
function otherProcessTries(file: string): number | null {
  return spawnSync("flock", ["-x", "-n", "-E", String(CONFLICT_EXIT), file, "true"]).status;
}

/** Another process that holds an exclusive flock on `file` until killed; resolves once it holds it. */
function otherProcessHolds(file: string): Promise<{ release: () => Promise<void> }> {
  // Its own process group: flock(1) forks the command, which inherits the locked
  // descriptor, so the lock is gone only when both are.
  const child = spawn("flock", ["-x", file, "-c", "echo locked; exec sleep 60"], { stdio: ["ignore", "pipe", "inherit"], detached: true });
  const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
  let released = false;
  const release = async (): Promise<void> => {
    if (!released) process.kill(-child.pid!, "SIGKILL");
    released = true;
    await exited;
  };
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.stdout.once("data", () => resolve({ release }));
  });
}

describe.skipIf(!haveFlock1)("flock(2) through fs-ext, seen by other processes", () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-flock-"));
    file = path.join(dir, "m.1");
    fs.writeFileSync(file, "");
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("sees a lock another process holds, and takes it once that process lets go", async () => {
    const holder = await otherProcessHolds(file);
    const fd = fs.openSync(file, "r+");
    try {
      expect(await tryFlockExclusive(fd, file)).toBe(false);
      await holder.release();
      expect(await tryFlockExclusive(fd, file)).toBe(true);
    } finally {
      fs.closeSync(fd);
      await holder.release();
    }
  });

  it("holds its lock against another process until unlocked", async () => {
    const fd = fs.openSync(file, "r+");
    try {
      expect(await tryFlockExclusive(fd, file)).toBe(true);
      expect(otherProcessTries(file)).toBe(CONFLICT_EXIT);
      await unlockFlock(fd, file);
      expect(otherProcessTries(file)).toBe(0);
    } finally {
      fs.closeSync(fd);
    }
  });

  it("lets go when its descriptor is closed", async () => {
    const fd = fs.openSync(file, "r+");
    expect(await tryFlockExclusive(fd, file)).toBe(true);
    expect(otherProcessTries(file)).toBe(CONFLICT_EXIT);
    fs.closeSync(fd);
    expect(otherProcessTries(file)).toBe(0);
  });

  it("conflicts with another open of the same file in this process (flock locks belong to the open file description)", async () => {
    const a = fs.openSync(file, "r+");
    const b = fs.openSync(file, "r");
    try {
      expect(await tryFlockExclusive(a, file)).toBe(true);
      expect(await tryFlockExclusive(b, file)).toBe(false);
      // Taking it again through the same description is not a conflict.
      expect(await tryFlockExclusive(a, file)).toBe(true);
    } finally {
      fs.closeSync(a);
      fs.closeSync(b);
    }
  });

  it("throws a typed error for a descriptor that is not open", async () => {
    const fd = fs.openSync(file, "r");
    fs.closeSync(fd);
    let err: unknown;
    try {
      tryFlockExclusive(fd, file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MailstoreError);
    expect((err as MailstoreError).code).toBe("UNSUPPORTED");
    expect((err as MailstoreError).message).toContain("EBADF");
  });
});
