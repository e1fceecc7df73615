/**
 * What the built CLI (bin/mailstore.js running dist/cli.cjs, as `npm run
 * build` leaves it) loads for a no-op command: none of the builtins that
 * scripts/bundle.mjs defers (issue #11 goal 2: start-up within 1.5× `node -e
 * 0`), while a verb that needs one still gets it.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";

const REPO = path.resolve(__dirname, "../../..");
const BIN = path.join(REPO, "bin/mailstore.js");
let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-startup-")); });
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * Runs the CLI; returns its output, the builtins it had loaded at exit and the
 * files of dist/ it opened. `toFile`: standard output is a file (read back), not a pipe.
 */
function run(args: string[], input = "", toFile = false, location = `mdbox:${dir}/mail`): { stdout: string; loaded: string[]; opened: string[] } {
  const hook = path.join(dir, "hook.cjs");
  const list = path.join(dir, "loaded.json");
  fs.writeFileSync(hook, [
    `const fs = require("node:fs"); const openSync = fs.openSync; const opened = [];`,
    `fs.openSync = (file, ...rest) => { opened.push(String(file)); return openSync(file, ...rest); };`,
    `process.on("exit", () => fs.writeFileSync(${JSON.stringify(list)}, JSON.stringify({ loaded: process.moduleLoadList, opened })));\n`,
  ].join("\n"));
  const outFile = path.join(dir, "stdout");
  const out = toFile ? fs.openSync(outFile, "w") : "pipe";
  // --require changes no V8 flag: the code cache is used as in a plain run.
  const r = spawnSync(process.execPath, ["--require", hook, BIN, "-l", location, ...args], { input, encoding: "utf8", stdio: ["pipe", out, "pipe"] });
  if (typeof out === "number") fs.closeSync(out);
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  const report = JSON.parse(fs.readFileSync(list, "utf8")) as { loaded: string[]; opened: string[] };
  const loaded = report.loaded.filter((m) => m.startsWith("NativeModule ")).map((m) => m.slice("NativeModule ".length));
  const opened = report.opened.filter((f) => path.dirname(f) === path.join(REPO, "dist")).map((f) => path.basename(f));
  return { stdout: toFile ? fs.readFileSync(outFile, "utf8") : r.stdout, loaded, opened };
}

it("a no-op command loads neither child_process, crypto nor fs/promises; a save loads crypto when it needs it", () => {
  expect(fs.statSync(path.join(REPO, "dist/cli.cjs")).mtimeMs, "run `npm run build` first").toBeGreaterThanOrEqual(fs.statSync(path.join(REPO, "dist/src/cli/main.js")).mtimeMs);
  run(["mailbox", "create", "INBOX"]);
  const noop = run(["mailbox", "status", "messages", "INBOX"]);
  expect(noop.stdout).toBe("INBOX messages=0\n");
  expect(noop.loaded.filter((m) => ["child_process", "crypto", "fs/promises"].includes(m))).toEqual([]);
  expect(run(["save", "-m", "INBOX"], "Subject: hi\n\nbody\n").loaded).toContain("crypto"); // the message's GUID
  expect(run(["mailbox", "status", "messages", "INBOX"]).stdout).toBe("INBOX messages=1\n");
});

it("a command on an mdbox store reads neither the lazy part nor its cache; one on Maildir, mbox or sdbox loads it", () => {
  run(["mailbox", "create", "INBOX"]);
  expect(run(["mailbox", "status", "messages", "INBOX"]).opened.sort()).toEqual(["cli.cache", "cli.cjs"]);
  for (const driver of ["maildir", "mbox", "sdbox"]) {
    const location = `${driver}:${dir}/${driver}`;
    run(["mailbox", "create", "INBOX"], "", false, location);
    run(["save", "-m", "INBOX"], "Subject: hi\n\nbody\n", false, location);
    const status = run(["mailbox", "status", "messages", "INBOX"], "", false, location);
    expect(status.stdout).toBe("INBOX messages=1\n");
    expect(status.opened.sort()).toEqual(["cli-lazy.cache", "cli-lazy.cjs", "cli.cache", "cli.cjs"]);
  }
});

it("a no-op printing to a file loads neither zlib nor Node's streams (process.stdout is made on first use only)", () => {
  run(["mailbox", "create", "INBOX"]);
  const noop = run(["mailbox", "status", "messages", "INBOX"], "", true);
  expect(noop.stdout).toBe("INBOX messages=0\n");
  expect(noop.loaded.filter((m) => m === "zlib" || m === "stream" || m === "internal/streams/readable" || m === "internal/fs/sync_write_stream")).toEqual([]);
});

it("a reader that closes the pipe early (`mailstore … | head`) ends the command without an error", async () => {
  run(["mailbox", "create", "INBOX"]);
  for (let i = 0; i < 3; i++) run(["save", "-m", "INBOX"], `Subject: ${i}\n\n${"body\n".repeat(1000)}`);
  const child = spawn(process.execPath, [BIN, "-l", `mdbox:${dir}/mail`, "fetch", "text", "mailbox", "INBOX", "all"], { stdio: ["ignore", "pipe", "pipe"] });
  // Closed before the command is even running: its first write meets EPIPE.
  child.stdout.destroy();
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => void (stderr += d.toString("utf8")));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  expect(stderr).toBe("");
  expect(code).toBe(0);
});

it("the project's imports of node:fs and node:path copy no namespace in the bundle (their functions are plain variables)", () => {
  const bundle = fs.readFileSync(path.join(REPO, "dist/cli.cjs"), "utf8");
  const copies = bundle.match(/__(toESM|reExport)\([^()]*require\("node:(fs|path)"\)/g) ?? [];
  expect(copies).toEqual([]);
});

it("the bundle and its lazy part are pure ASCII (the launcher reads them as latin1), each one function expression, CommonJS's wrapper", () => {
  for (const [file, link] of [["dist/cli.cjs", "__mailstorePart"], ["dist/cli-lazy.cjs", "__mailstoreCore"]]) {
    const bundle = fs.readFileSync(path.join(REPO, file));
    expect(bundle.findIndex((byte) => byte > 0x7f)).toBe(-1);
    const source = bundle.toString("latin1");
    expect(source.startsWith(`(function (exports, require, module, __filename, __dirname, ${link}) {`)).toBe(true);
    expect(source.trimEnd().endsWith("})")).toBe(true);
  }
});
