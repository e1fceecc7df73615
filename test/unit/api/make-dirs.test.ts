import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect, it } from "vitest";
import { makeDirs } from "../../../src/shared/make-dirs.js";
import { openStorage } from "../../../src/index.js";

it("makeDirs creates missing levels, accepts existing ones, and fails once where mkdir fails", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-mkdirs-"));
  try {
    makeDirs(path.join(dir, "a/b/c"));
    makeDirs(path.join(dir, "a/b/c"));
    expect(fs.statSync(path.join(dir, "a/b/c")).isDirectory()).toBe(true);
    fs.writeFileSync(path.join(dir, "file"), "");
    expect(() => makeDirs(path.join(dir, "file/x"))).toThrow(/ENOTDIR/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// Node 20's mkdirSync(…, { recursive: true }) spins forever on /proc paths.
it.runIf(fs.existsSync("/proc/self"))("a mail location under /proc gives an error, not a hang", async () => {
  expect(() => makeDirs("/proc/nonexistent/mail")).toThrow(/ENOENT/);
  for (const format of ["mdbox", "sdbox", "maildir", "mbox"]) {
    let error: unknown;
    try {
      const storage = openStorage(`${format}:/proc/nonexistent/mail`);
      await storage.openMailbox("INBOX").finally(() => storage.close());
    } catch (err) {
      error = err;
    }
    expect(error, format).toBeInstanceOf(Error);
  }
}, 10_000);
