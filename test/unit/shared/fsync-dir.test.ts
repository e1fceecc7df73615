import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect, it } from "vitest";
import { allEnded } from "../../../src/shared/all-ended.js";
import { fsyncDirOnPool } from "../../../src/shared/fsync-dir.js";

it("fsyncDirOnPool: a directory that cannot be opened is a rejection, not a throw, so every sync started beside it is awaited", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fsync-dir-"));
  try {
    const started: Promise<void>[] = [];
    // A synchronous throw here would leave the first sync's promise unawaited.
    expect(() => started.push(...[dir, path.join(dir, "missing")].map(fsyncDirOnPool))).not.toThrow();
    await expect(allEnded(started)).rejects.toMatchObject({ code: "ENOENT" });
    await expect(started[0]).resolves.toBeUndefined();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
