import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { Profiler } from "node:inspector/promises";
import { fmt } from "../util.js";
import { nodeChildEnv, writeSampleMbox } from "../dovecot.js";
import { dropIndexes } from "./embedded-steps.js";
import { topSelfTime } from "./profile-steps.bench.js";

/**
 * `profile-whole`: vs-dovecot's steps as whole `mailstore` processes, each
 * under `node --cpu-prof` (100 µs), in vs-dovecot's order on one store, at
 * each size asked for: what a short command does beyond its start. The CLI
 * runs from a copy of this checkout's bin/ and dist/, whose code cache is
 * written by a first profiled run: V8 rejects a cache made under other flags,
 * and a run without it would show a full compile of the bundle (and rewrite
 * the real dist/cli.cache). Times include the profiler's overhead.
 */
export async function profileWholeBench(opts: { sizes: readonly number[]; top?: number }): Promise<string[]> {
  const rows = ["", "| messages | step (whole process) | s (profiled) | top self time |", "|---|---|---|---|"];
  const checkout = copyCheckout();
  try {
    for (const size of opts.sizes) {
      const work = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-profile-whole-"));
      try {
        fs.mkdirSync(path.join(work, "src", "mail"), { recursive: true });
        const inbox = path.join(work, "src", "inbox");
        writeSampleMbox(inbox, size, 2250);
        const store = path.join(work, "store");
        const run = (args: string[]) => profiled(checkout, work, ["-l", `mdbox:${store}`, ...args]);
        profiled(checkout, work, ["-l", `mdbox:${work}/warm`, "mailbox", "create", "Warm"]); // the cache, under these flags
        // What every command pays before its work: the no-op of vs-dovecot.
        const noop = profiled(checkout, work, ["-l", `mdbox:${work}/warm`, "mailbox", "status", "messages", "Warm"]);
        rows.push(`| ${size.toLocaleString("en")} | no-op (status of an empty mailbox) | ${fmt((noop.endTime - noop.startTime) / 1e6)} | ${topSelfTime(noop, opts.top ?? 6)} |`);
        const half = Math.floor(size / 2);
        const plan: Array<[string, string[]]> = [
          ["import", ["import", `mbox:${work}/src/mail:INBOX=${inbox}`]],
          ["fetch text all", ["fetch", "text", "mailbox", "INBOX", "all"]],
          ["flag all", ["flags", "add", "\\Seen", "mailbox", "INBOX", "all"]],
          ["flag one", ["flags", "add", "\\Flagged", "mailbox", "INBOX", "uid", String(half + 1)]],
          ["expunge half", ["expunge", "mailbox", "INBOX", "uid", `1:${half}`]],
          ["purge", ["purge"]],
          ["reopen", ["mailbox", "status", "messages uidnext highestmodseq", "INBOX"]],
          ["rebuild after index loss", ["force-resync", "*"]],
        ];
        for (const [name, args] of plan) {
          if (name.startsWith("rebuild")) dropIndexes(store);
          const profile = run(args);
          rows.push(`| ${size.toLocaleString("en")} | ${name} | ${fmt((profile.endTime - profile.startTime) / 1e6)} | ${topSelfTime(profile, opts.top ?? 6)} |`);
        }
      } finally {
        fs.rmSync(work, { recursive: true, force: true });
      }
    }
  } finally {
    fs.rmSync(checkout, { recursive: true, force: true });
  }
  return rows;
}

/** bin/, dist/ and package.json of this checkout copied to a temp directory, node_modules linked. */
function copyCheckout(): string {
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-profile-checkout-"));
  for (const part of ["bin", "dist", "package.json"]) fs.cpSync(path.join(repo, part), path.join(copy, part), { recursive: true, preserveTimestamps: true });
  fs.symlinkSync(path.join(repo, "node_modules"), path.join(copy, "node_modules"));
  return copy;
}

/** Runs the CLI of `checkout` with `args` under --cpu-prof; returns its profile. Throws on a non-zero exit. */
function profiled(checkout: string, work: string, args: string[]): Profiler.Profile {
  const dir = fs.mkdtempSync(path.join(work, "prof-"));
  try {
    const r = spawnSync(process.execPath, ["--cpu-prof", "--cpu-prof-dir", dir, "--cpu-prof-interval", "100", path.join(checkout, "bin", "mailstore.js"), ...args], {
      env: { ...nodeChildEnv(), MAIL: "" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    if (r.status !== 0) throw new Error(`mailstore ${args.join(" ")} exited ${r.status}: ${r.stderr.toString("utf8")}`);
    const [file] = fs.readdirSync(dir);
    return JSON.parse(fs.readFileSync(path.join(dir, file), "utf8")) as Profiler.Profile;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
