/**
 * flockStillAt: the lock is only worth having on the file the path still
 * names. A purge holding the flock unlinks m.N (or a rebuild renames a new
 * one over it) while we wait between open and lock; an append or a purge
 * working on the old file would write where nobody reads, or read a file
 * already gone.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { flockStillAt } from "../../../../src/drivers/dbox/flock.js";

describe("flockStillAt", () => {
  let dir: string;
  let file: string;
  const fds: number[] = [];
  const open = (mode = "r"): number => {
    const fd = fs.openSync(file, mode);
    fds.push(fd);
    return fd;
  };
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-flock-still-"));
    file = path.join(dir, "m.1");
    fs.writeFileSync(file, "first");
  });
  afterEach(() => {
    for (const fd of fds.splice(0)) fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("gives the file's size under the lock when the path still names it", () => {
    const st = flockStillAt(open(), file);
    expect(st).toEqual({ sizeBytes: 5 });
    // Held: another open description cannot take it.
    expect(flockStillAt(open(), file)).toBe("locked");
  });

  it("is gone when the file was unlinked between open and lock", () => {
    const fd = open();
    fs.unlinkSync(file);
    expect(flockStillAt(fd, file)).toBe("gone");
  });

  it("is gone when another file was renamed over the path between open and lock", () => {
    const fd = open();
    fs.writeFileSync(`${file}.new`, "second");
    fs.renameSync(`${file}.new`, file);
    expect(flockStillAt(fd, file)).toBe("gone");
  });
});
