/**
 * The CLI's standard output (src/cli/io.ts): gathered writes straight to a
 * file or device, the stream for a pipe. Both give the same bytes, in
 * order, also for output far larger than one 64 KiB flush; a pipe closed
 * early ends the command quietly.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";

const REPO = path.resolve(__dirname, "../../..");
const BIN = path.join(REPO, "bin/mailstore.js");
let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-stdout-")); });
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function cli(args: string[], opts: { input?: string; stdout?: number | "pipe" } = {}): ReturnType<typeof spawnSync> {
  return spawnSync(process.execPath, [BIN, "-l", `mdbox:${dir}/mail`, ...args], { input: opts.input, stdio: ["pipe", opts.stdout ?? "pipe", "pipe"], maxBuffer: 1 << 26 });
}

it("a fetch written to a file equals the same fetch through a pipe, byte for byte", () => {
  // ~600 KiB of output: several flushes, with message texts between field lines.
  // One import of a 60-message mbox, not 60 saves: a process each took longer
  // than the test's time limit on a loaded machine.
  const source = path.join(dir, "source");
  fs.mkdirSync(source);
  let mbox = "";
  for (let i = 0; i < 60; i++) {
    mbox += `From sender@example.org Mon Dec  7 10:00:00 2026\nSubject: m${i}\n\n${`line ${i} ${"x".repeat(70)}\n`.repeat(120)}\n`;
  }
  fs.writeFileSync(path.join(source, "inbox"), mbox);
  expect(cli(["import", `mbox:${source}:INBOX=${source}/inbox`]).status).toBe(0);
  const piped = cli(["fetch", "uid text", "mailbox", "INBOX", "all"]);
  expect(piped.status).toBe(0);
  const file = path.join(dir, "out");
  const fd = fs.openSync(file, "w");
  try {
    expect(cli(["fetch", "uid text", "mailbox", "INBOX", "all"], { stdout: fd }).status).toBe(0);
  } finally {
    fs.closeSync(fd);
  }
  const written = fs.readFileSync(file);
  expect(written.length).toBeGreaterThan(500_000);
  expect(written.equals(piped.stdout as Buffer)).toBe(true);
  expect(written.toString("latin1")).toContain("uid: 60\ntext:\nSubject: m59\n");
});
