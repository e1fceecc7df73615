import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { median } from "./util.js";

/** A whole process measured: wall-clock seconds and, where GNU time(1) is installed, peak RSS. */
export interface Measured {
  readonly seconds: number;
  /** Peak resident set size in bytes (undefined without /usr/bin/time). */
  readonly peakRss: number | undefined;
}

const GNU_TIME = "/usr/bin/time";
const haveGnuTime = fs.existsSync(GNU_TIME);

/**
 * Runs `cmd args` to completion, timed with the wall clock; under GNU
 * time(1) (`-f %M`, the child's max RSS in KiB, written to a file so that
 * the command's own stderr stays its own), which both sides pay alike.
 * @throws when the command exits non-zero.
 */
export function runMeasured(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; input?: Buffer } = {}): Measured {
  const rssFile = haveGnuTime ? path.join(os.tmpdir(), `mailstore-bench-rss-${process.pid}`) : undefined;
  const [file, argv] = rssFile === undefined ? [cmd, [...args]] : [GNU_TIME, ["-f", "%M", "-o", rssFile, cmd, ...args]];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(file, argv, { env: opts.env, input: opts.input, stdio: ["pipe", "ignore", "pipe"], maxBuffer: 1 << 28 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${path.basename(cmd)} ${args.join(" ")} exited ${r.status}: ${r.stderr?.toString("utf8") ?? ""}`);
  let peakRss: number | undefined;
  if (rssFile !== undefined) {
    const kib = Number(fs.readFileSync(rssFile, "utf8").trim().split("\n").at(-1));
    fs.rmSync(rssFile, { force: true });
    peakRss = Number.isFinite(kib) ? kib * 1024 : undefined;
  }
  return { seconds, peakRss };
}

/**
 * doveadm as the side-by-side reference in benchmarks: a private config that
 * drops to uid 65534 (see shared/formats/doveadm-oracle.md), whole processes
 * timed with the wall clock.
 */
export class DoveadmRunner {
  readonly dir: string;
  readonly conf: string;

  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-bench-dovecot-"));
    fs.chmodSync(this.dir, 0o755);
    for (const d of ["run", "state"]) fs.mkdirSync(path.join(this.dir, d));
    this.conf = path.join(this.dir, "dovecot.conf");
    fs.writeFileSync(this.conf, [
      `base_dir = ${this.dir}/run`, `state_dir = ${this.dir}/state`, "log_path = /dev/stderr", "info_log_path = /dev/stderr",
      "mail_uid = 65534", "mail_gid = 65534", "first_valid_uid = 1", "first_valid_gid = 1", "",
    ].join("\n"));
  }

  static available(): boolean {
    return spawnSync("doveadm", ["-c", "/dev/null", "help"], { stdio: "ignore" }).status !== null && process.getuid?.() === 0;
  }

  /** Runs doveadm on `location`; returns wall-clock seconds. Throws on a non-zero exit. */
  run(location: string, args: string[], settings: Record<string, string> = {}): number {
    return this.measure(location, args, settings).seconds;
  }

  /** Runs doveadm on `location`, measured. Throws on a non-zero exit. */
  measure(location: string, args: string[], settings: Record<string, string> = {}): Measured {
    const full = ["-c", this.conf, "-o", `mail_location=${location}`, ...Object.entries(settings).flatMap(([k, v]) => ["-o", `${k}=${v}`]), ...args];
    return runMeasured("doveadm", full, { env: { PATH: process.env.PATH, USER: "bench", HOME: this.dir, TZ: "UTC" } });
  }

  /** The mail tree must belong to the uid doveadm drops to. */
  chown(root: string): void {
    spawnSync("chown", ["-R", "65534:65534", root]);
  }

  cleanup(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Waits until the dirty pages of earlier steps are written back (sync(1)),
 * untimed, before a timed step: otherwise a step pays for the writeback of
 * whatever ran before it (a `cp -a` of the store, the other tool's run), and
 * its fsyncs wait behind it, by an amount that depends on the order of the
 * steps rather than on the step. Both tools get the same.
 */
export function settleWriteback(): void {
  spawnSync("sync", { stdio: "ignore" });
}

/** Runs the mailstore CLI as a whole process; returns wall-clock seconds. */
export function timeMailstore(args: string[], input?: Buffer): number {
  return measureMailstore(args, input).seconds;
}

/** Runs the mailstore CLI (bin/mailstore.js, as installed) as a whole process, measured. */
export function measureMailstore(args: string[], input?: Buffer): Measured {
  const bin = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../bin/mailstore.js");
  return runMeasured(process.execPath, [bin, ...args], { env: { ...nodeChildEnv(), MAIL: "" }, input });
}

/**
 * The environment of a timed Node child: this one's, without
 * NODE_EXTRA_CA_CERTS. Where it is set (this bench machine sets it to the
 * system bundle), every Node start reads and parses those certificates:
 * ~56 ms of CPU of `node -e 0`'s 137 (cold4, RESULTS.md). The engine opens no
 * TLS connection in these steps; the cost would land equally on both sides
 * of each no-op subtraction and only widen the spread of every figure.
 */
export function nodeChildEnv(): NodeJS.ProcessEnv {
  const { NODE_EXTRA_CA_CERTS: _certs, ...env } = process.env;
  return env;
}

/** Each tool's whole-process no-op, medians of `runs` (seconds). */
export interface Noops {
  readonly doveadm: number;
  readonly engine: number;
  /** `node -e 0`: what any Node process costs. */
  readonly node: number;
}

/**
 * Each tool's cost of doing nothing: start, open an empty mailbox
 * (`mailbox status messages Empty`), report. Side-by-side benchmarks
 * subtract these from whole-process times to compare the work done.
 * @param location the mail location of a fresh store under `dir`.
 */
export function measureNoops(dovecot: DoveadmRunner, location: (dir: string) => string, runs = 5): Noops {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-bench-noop-"));
  try {
    fs.chmodSync(work, 0o755);
    const dl = location(path.join(work, "dovecot"));
    const el = location(path.join(work, "engine"));
    dovecot.chown(work);
    dovecot.run(dl, ["mailbox", "create", "Empty"]);
    measureMailstore(["-l", el, "mailbox", "create", "Empty"]);
    const d: number[] = [];
    const e: number[] = [];
    const n: number[] = [];
    for (let i = 0; i < runs; i++) {
      d.push(dovecot.measure(dl, ["mailbox", "status", "messages", "Empty"]).seconds);
      e.push(measureMailstore(["-l", el, "mailbox", "status", "messages", "Empty"]).seconds);
      n.push(runMeasured(process.execPath, ["-e", "0"], { env: nodeChildEnv() }).seconds);
    }
    return { doveadm: median(d), engine: median(e), node: median(n) };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The whole-process *work* ratio: engine over doveadm, each with its own
 * no-op subtracted first.
 */
export function workRatio(engineSeconds: number, doveadmSeconds: number, noop: Noops): number {
  return Math.max(engineSeconds - noop.engine, 0) / Math.max(doveadmSeconds - noop.doveadm, 1e-3);
}

/** A synthetic mbox of `count` distinct messages of about `sizeBytes` each. */
export function writeSampleMbox(file: string, count: number, sizeBytes: number): number {
  const fd = fs.openSync(file, "w");
  let total = 0;
  const filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\n";
  try {
    for (let i = 1; i <= count; i++) {
      const date = new Date(Date.UTC(2026, 0, 1) + i * 60_000);
      const head = [
        `From sender${i % 97}@example.com ${date.toUTCString().replace(/^(\w+), (\d+) (\w+) (\d+) (\S+) GMT$/, "$1 $3 $2 $5 $4")}`,
        `From: Sender ${i % 97} <sender${i % 97}@example.com>`, "To: rcpt@example.org", `Subject: message ${i}`,
        `Date: ${date.toUTCString().replace("GMT", "+0000")}`, `Message-ID: <bench-${i}@mailstore.example>`, "", "",
      ].join("\n");
      let body = `Body of message ${i}.\n`;
      while (head.length + body.length < sizeBytes) body += filler;
      const text = head + body + "\n";
      fs.writeSync(fd, text);
      total += text.length;
    }
  } finally {
    fs.closeSync(fd);
  }
  return total;
}
