import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

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
    const full = ["-c", this.conf, "-o", `mail_location=${location}`, ...Object.entries(settings).flatMap(([k, v]) => ["-o", `${k}=${v}`]), ...args];
    const t0 = process.hrtime.bigint();
    const r = spawnSync("doveadm", full, { env: { PATH: process.env.PATH, USER: "bench", HOME: this.dir, TZ: "UTC" }, encoding: "utf8", maxBuffer: 1 << 28 });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0) throw new Error(`doveadm ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
    return seconds;
  }

  /** The mail tree must belong to the uid doveadm drops to. */
  chown(root: string): void {
    spawnSync("chown", ["-R", "65534:65534", root]);
  }

  cleanup(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs the mailstore CLI as a whole process; returns wall-clock seconds. */
export function timeMailstore(args: string[], input?: Buffer): number {
  const bin = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../bin/mailstore.js");
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [bin, ...args], { env: { ...process.env, MAIL: "" }, input, encoding: "utf8", maxBuffer: 1 << 28 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`mailstore ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return seconds;
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
