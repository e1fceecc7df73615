import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { watchMailFiles } from "../../../src/api/mail-file-watch.js";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-watch-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it("coalesces a burst of changes in a directory into one call, and stops", async () => {
  fs.mkdirSync(path.join(dir, "new"));
  let calls = 0;
  const stop = watchMailFiles([path.join(dir, "new")], async () => void calls++);
  for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(dir, "new", `m${i}`), "x");
  await sleep(200);
  expect(calls).toBe(1);
  stop();
  fs.writeFileSync(path.join(dir, "new", "after"), "x");
  await sleep(100);
  expect(calls).toBe(1);
});

it("follows one file (also when it does not exist yet) and ignores its neighbours", async () => {
  const mbox = path.join(dir, "inbox");
  let calls = 0;
  const stop = watchMailFiles([mbox], async () => void calls++);
  fs.writeFileSync(path.join(dir, "other"), "x");
  await sleep(100);
  expect(calls).toBe(0);
  fs.writeFileSync(mbox, "From a@b Thu Nov 29 22:33:52 2001\n\nx\n");
  await sleep(100);
  expect(calls).toBe(1);
  fs.appendFileSync(mbox, "\nFrom a@b Thu Nov 29 22:33:53 2001\n\ny\n");
  await sleep(100);
  expect(calls).toBe(2);
  stop();
});

it("never runs the callback twice at once: changes during a run make one more run", async () => {
  fs.mkdirSync(path.join(dir, "cur"));
  let running = 0;
  let maxRunning = 0;
  let calls = 0;
  const stop = watchMailFiles([path.join(dir, "cur")], async () => {
    calls++;
    running++;
    maxRunning = Math.max(maxRunning, running);
    await sleep(80);
    running--;
  });
  fs.writeFileSync(path.join(dir, "cur", "a"), "x");
  await sleep(50);
  fs.writeFileSync(path.join(dir, "cur", "b"), "x");
  await sleep(300);
  stop();
  expect(maxRunning).toBe(1);
  expect(calls).toBe(2);
});
