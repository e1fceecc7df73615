/**
 * Dovecot 2.3 `doveadm` oracle for interoperability tests and the campaigns
 * (campaign/): no vitest here, so the campaigns run it from dist/.
 *
 * See /work/shared/formats/doveadm-oracle.md. In short: doveadm runs as root
 * (we are root in the test environment) with a private config that makes it
 * drop privileges to uid/gid 65534 for mail access; the mail root must be
 * owned by 65534 before any *modifying* command (call chownRoot() after the
 * TypeScript engine wrote files as root). No shell is involved: every call is
 * one execFile() of doveadm with a clean environment.
 *
 * Per-format index directories (verified with doveadm 2.3.19):
 *   sdbox / mdbox : <root>/mailboxes/<name>/dbox-Mails/   ("A/B" → mailboxes/A/B/dbox-Mails)
 *                   with INDEX=<i>: <i>/mailboxes/<name>/ (u.N stay in dbox-Mails)
 *   mdbox map     : <root>/storage/  (dovecot.map.index*, m.N files); with INDEX=<i>
 *                   the map index is in <i>/storage/, the m.N files stay
 *   maildir       : INBOX → <root>/, "X" → <root>/.X/, "A.B" → <root>/.A.B/
 *   mbox          : INBOX → <root>/mail/.imap/INBOX/, "X" → <root>/mail/.imap/X/,
 *                   "A/B" → <root>/mail/A/.imap/B/   (the .imap dir sits next to the mbox file)
 *   list index    : dovecot.list.index.log in <root>/ (mbox: <root>/mail/.imap/); with
 *                   sdbox/mdbox INDEX=<i> in <i>/, with dovecot.mailbox.log
 * Mailbox names are assumed to be plain ASCII (no mUTF-7 / fs escaping handled).
 */
import { execFile } from "node:child_process";
import type { ExecFileException } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseIndexDump, parseLogDump } from "./doveadm-dump.js";
import type { IndexDump, LogDump } from "./doveadm-dump.js";

export type MailFormat = "sdbox" | "mdbox" | "maildir" | "mbox";
export const MAIL_FORMATS: readonly MailFormat[] = ["sdbox", "mdbox", "maildir", "mbox"];

/** uid/gid doveadm drops to (nobody/nogroup on Debian). */
export const ORACLE_UID = 65534;
export const ORACLE_GID = 65534;

function findDoveadm(): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(path.delimiter), "/usr/bin", "/usr/sbin", "/usr/local/bin"];
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, "doveadm");
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** Absolute path of doveadm, if installed. */
export const doveadmPath: string | undefined = findDoveadm();
export const haveDoveadm: boolean = doveadmPath !== undefined;
/** In CI the interop suites must run: a missing doveadm is a failure, not a skip. */
export const requireInterop: boolean = !!process.env.CI;
/** doveadm needs to start as root to drop to 65534 (see doveadm-oracle.md §1). */
export const isRoot: boolean = typeof process.getuid === "function" && process.getuid() === 0;
/** True when interop tests can actually run here. */
export const interopAvailable: boolean = haveDoveadm && isRoot;

export interface RunOptions {
  /** Extra `-o key=value` settings for this call (e.g. mail_index_log_rotate_max_size: "1"). */
  extraSettings?: Record<string, string>;
  /** Data written to doveadm's stdin (stdin is closed immediately otherwise). */
  input?: string | Buffer;
  /** Do not throw on a non-zero exit code; the caller inspects `code`. */
  allowFailure?: boolean;
  /** Omit `-o mail_location=…` (e.g. for `dump`). */
  noLocation?: boolean;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface RunBufferResult {
  stdout: Buffer;
  stderr: string;
  code: number;
}

/** Thrown when doveadm exits non-zero. The message contains the command line, exit code and stderr. */
export class DoveadmError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly code: number,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`doveadm ${args.join(" ")} exited with code ${code}\nstderr:\n${stderr.trimEnd() || "(empty)"}`);
    this.name = "DoveadmError";
  }
}

/** Lines of doveadm stderr that indicate Dovecot disliked something. */
export function stderrProblems(stderr: string, opts: { allowWarnings?: readonly RegExp[] } = {}): string[] {
  return stderr
    .split("\n")
    .filter((l) => /Error:|Fatal:|Panic:|Corrupt|corrupt|Warning:/.test(l))
    .filter((l) => !(opts.allowWarnings ?? []).some((re) => re.test(l)));
}

/** Warnings `force-resync` always prints (ignored by assertNoStderrProblems for force-resync calls). */
export const RESYNC_WARNINGS: readonly RegExp[] = [/: Rebuilding index$/, /: rebuilding indexes$/, /Warning: fscking index file /];

/** Parse a doveadm flags string into a list, dropping \Recent. */
export function parseFlags(flags: string | undefined): string[] {
  return (flags ?? "")
    .split(" ")
    .filter((f) => f !== "" && f !== "\\Recent");
}

/** A search query for doveadm: an argv array, or a string split on whitespace. */
export type Query = readonly string[] | string;

function queryArgs(q: Query): string[] {
  return typeof q === "string" ? q.split(/\s+/).filter((s) => s !== "") : [...q];
}

export interface OracleOptions {
  /** Parent directory for the throwaway oracle dir (default os.tmpdir()). */
  tmpParent?: string;
  /** Settings passed as `-o key=value` to every doveadm call. */
  settings?: Record<string, string>;
  /** chown the mail root to 65534 before every doveadm call (default false). */
  autoChown?: boolean;
  /** TZ for doveadm (default "UTC"). */
  tz?: string;
  /** Keep the directory in cleanup() (also when env KEEP_ORACLE is set). */
  keep?: boolean;
  /** Per-call timeout in ms (default 30 000). */
  timeoutMs?: number;
  /** sdbox/mdbox: alternate storage at <dir>/alt (`:ALT=` in the location), for altmove. */
  alt?: boolean;
  /** sdbox/mdbox: index files in their own tree at <dir>/index (`:INDEX=` in the location). */
  index?: boolean;
}

/**
 * One throwaway Dovecot "user": <dir>/dovecot.conf, <dir>/run, <dir>/state and the
 * mail root <dir>/mail (format-specific layout below it).
 */
export class DovecotOracle {
  readonly format: MailFormat;
  /** Private oracle directory (mode 0755, contains dovecot.conf). */
  readonly dir: string;
  readonly confPath: string;
  /** Mail root (owned by 65534). For mbox it contains `mail/` (folders) and `inbox` (INBOX file). */
  readonly root: string;
  /** The mail_location string passed with -o. */
  readonly location: string;
  /** `INDEX=` directory (OracleOptions.index), else undefined. */
  readonly indexRoot: string | undefined;
  /** Hierarchy separator for mailbox names ("." for maildir, "/" otherwise). */
  readonly separator: string;
  /** stderr of the last doveadm call. */
  lastStderr = "";
  /** stderr of every call, with its command line ({args, stderr}). */
  readonly stderrLog: Array<{ args: string[]; stderr: string }> = [];
  /** Number of doveadm processes spawned. */
  calls = 0;

  private readonly settings: Record<string, string>;
  private readonly autoChown: boolean;
  private readonly tz: string;
  private readonly keep: boolean;
  private readonly timeoutMs: number;

  constructor(format: MailFormat, opts: OracleOptions = {}) {
    if (!MAIL_FORMATS.includes(format)) throw new Error(`unknown mail format ${format}`);
    if (!doveadmPath) throw new Error("doveadm is not installed");
    this.format = format;
    this.settings = { ...(opts.settings ?? {}) };
    this.autoChown = opts.autoChown ?? false;
    this.tz = opts.tz ?? "UTC";
    this.keep = opts.keep ?? !!process.env.KEEP_ORACLE;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.separator = format === "maildir" ? "." : "/";

    this.dir = fs.mkdtempSync(path.join(opts.tmpParent ?? os.tmpdir(), `dovecot-oracle-${format}-`));
    fs.chmodSync(this.dir, 0o755);
    fs.mkdirSync(path.join(this.dir, "run"), { mode: 0o755 });
    fs.mkdirSync(path.join(this.dir, "state"), { mode: 0o755 });
    this.confPath = path.join(this.dir, "dovecot.conf");
    fs.writeFileSync(
      this.confPath,
      [
        "# standalone doveadm oracle config (no dovecot daemon needed)",
        `base_dir = ${this.dir}/run`,
        `state_dir = ${this.dir}/state`,
        "log_path = /dev/stderr",
        "info_log_path = /dev/stderr",
        `mail_uid = ${ORACLE_UID}`,
        `mail_gid = ${ORACLE_GID}`,
        "first_valid_uid = 1",
        "first_valid_gid = 1",
        "",
      ].join("\n"),
      { mode: 0o644 },
    );

    this.root = path.join(this.dir, "mail");
    fs.mkdirSync(this.root, { mode: 0o755 });
    switch (format) {
      case "sdbox":
      case "mdbox":
      case "maildir":
        this.location = `${format}:${this.root}`;
        if (opts.alt && format !== "maildir") {
          fs.mkdirSync(path.join(this.dir, "alt"), { mode: 0o755 });
          this.location += `:ALT=${this.dir}/alt`;
        }
        break;

      case "mbox":
        fs.mkdirSync(path.join(this.root, "mail"), { mode: 0o755 });
        fs.writeFileSync(path.join(this.root, "inbox"), "", { mode: 0o600 });
        this.location = `mbox:${this.root}/mail:INBOX=${this.root}/inbox`;
        break;
    }
    this.indexRoot = opts.index ? path.join(this.dir, "index") : undefined;
    if (this.indexRoot !== undefined) {
      if (format !== "sdbox" && format !== "mdbox") throw new Error(`OracleOptions.index is for sdbox and mdbox (format ${format})`);
      fs.mkdirSync(this.indexRoot, { mode: 0o755 });
      this.location += `:INDEX=${this.indexRoot}`;
    }
    this.chownRootSync();
  }

  // ───────────────────────────── paths ─────────────────────────────

  /** Directory holding dovecot.index.log for `mailbox` (see the table at the top). */
  mailboxIndexDir(mailbox: string): string {
    const inbox = mailbox.toUpperCase() === "INBOX";
    switch (this.format) {
      case "sdbox":
      case "mdbox":
        if (this.indexRoot !== undefined) return path.join(this.indexRoot, "mailboxes", ...mailbox.split("/"));
        return path.join(this.root, "mailboxes", ...mailbox.split("/"), "dbox-Mails");
      case "maildir":
        return inbox ? this.root : path.join(this.root, `.${mailbox}`);
      case "mbox": {
        if (inbox) return path.join(this.root, "mail", ".imap", "INBOX");
        const parts = mailbox.split("/");
        const leaf = parts.pop()!;
        return path.join(this.root, "mail", ...parts, ".imap", leaf);
      }
    }
  }

  /** Path of the mailbox's dovecot.index.log. */
  mailboxLogPath(mailbox: string): string {
    return path.join(this.mailboxIndexDir(mailbox), "dovecot.index.log");
  }

  /** mdbox only: <root>/storage (dovecot.map.index*, m.N). */
  storageDir(): string {
    if (this.format !== "mdbox") throw new Error(`storageDir() is mdbox-only (format ${this.format})`);
    return path.join(this.root, "storage");
  }

  /** mdbox only: the directory of dovecot.map.index* (<root>/storage, with INDEX= <index>/storage). */
  mapIndexDir(): string {
    return path.join(this.indexRoot ?? this.root, path.relative(this.root, this.storageDir()));
  }

  /** Directory holding dovecot.list.index.log. */
  listIndexDir(): string {
    return this.format === "mbox" ? path.join(this.root, "mail", ".imap") : (this.indexRoot ?? this.root);
  }

  // ─────────────────────────── process running ───────────────────────────

  private buildArgs(args: readonly string[], opts: RunOptions): string[] {
    const full = ["-c", this.confPath];
    if (!opts.noLocation) full.push("-o", `mail_location=${this.location}`);
    for (const [k, v] of Object.entries({ ...this.settings, ...(opts.extraSettings ?? {}) })) full.push("-o", `${k}=${v}`);
    full.push(...args);
    return full;
  }

  private exec(args: readonly string[], opts: RunOptions, binary: boolean): Promise<{ stdout: string | Buffer; stderr: string; code: number; full: string[] }> {
    if (this.autoChown) this.chownRootSync();
    const full = this.buildArgs(args, opts);
    this.calls++;
    return new Promise((resolve, reject) => {
      // Not execFile's own timeout: before the kill, say what the process was waiting for.
      let hung = "";
      const timer = setTimeout(() => {
        hung = `\n(killed after ${this.timeoutMs} ms: ${whatProcessWaitsFor(child.pid)})`;
        child.kill("SIGKILL");
      }, this.timeoutMs);
      const child = execFile(
        doveadmPath!,
        full,
        {
          env: { PATH: "/usr/bin:/bin:/usr/sbin:/sbin", USER: "oracle", HOME: this.dir, TZ: this.tz },
          cwd: this.dir,
          encoding: "buffer",
          maxBuffer: 256 * 1024 * 1024,
        },
        (err: ExecFileException | null, stdout: Buffer, stderr: Buffer) => {
          clearTimeout(timer);
          const errText = stderr.toString("utf8") + hung;
          let code = 0;
          if (err) {
            if (typeof err.code === "number") code = err.code;
            else if (err.killed || err.signal) code = -1;
            else return reject(err); // spawn failure (ENOENT …)
          }
          this.lastStderr = errText;
          this.stderrLog.push({ args: [...args], stderr: errText });
          resolve({ stdout: binary ? stdout : stdout.toString("utf8"), stderr: errText, code, full });
        },
      );
      child.stdin?.on("error", () => {
        /* doveadm may exit before reading stdin; the exit code tells the story */
      });
      child.stdin?.end(opts.input ?? "");
    });
  }

  /**
   * Run `doveadm -c <conf> -o mail_location=<loc> [-o k=v…] <args…>`.
   * Global options such as `-f json` may lead `args`. Throws DoveadmError on a
   * non-zero exit unless `allowFailure`.
   */
  async run(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const r = await this.exec(args, opts, false);
    const stdout = r.stdout as string;
    if (r.code !== 0 && !opts.allowFailure) throw new DoveadmError(args, r.code, stdout, r.stderr);
    return { stdout, stderr: r.stderr, code: r.code };
  }

  /** Like run() but returns stdout as raw bytes. */
  async runBuffer(args: readonly string[], opts: RunOptions = {}): Promise<RunBufferResult> {
    const r = await this.exec(args, opts, true);
    const stdout = r.stdout as Buffer;
    if (r.code !== 0 && !opts.allowFailure) throw new DoveadmError(args, r.code, stdout.toString("utf8"), r.stderr);
    return { stdout, stderr: r.stderr, code: r.code };
  }

  /** Problem lines ("Error:", "Fatal:", "Panic:", "Corrupt…", "Warning:") in the last call's stderr. */
  lastStderrProblems(allowWarnings: readonly RegExp[] = []): string[] {
    return stderrProblems(this.lastStderr, { allowWarnings });
  }

  /**
   * Throw if any call so far printed a problem line (optionally allowing some
   * warnings; RESYNC_WARNINGS are always allowed for force-resync calls).
   */
  assertNoStderrProblems(allowWarnings: readonly RegExp[] = []): void {
    const bad = this.stderrLog.flatMap((e) => {
      const allow = e.args.includes("force-resync") ? [...allowWarnings, ...RESYNC_WARNINGS] : allowWarnings;
      return stderrProblems(e.stderr, { allowWarnings: allow }).map((l) => `doveadm ${e.args.join(" ")}: ${l}`);
    });
    if (bad.length) throw new Error(`doveadm reported problems:\n${bad.join("\n")}`);
  }

  /** Forget the stderr collected so far (e.g. after an intentionally failing call). */
  clearStderrLog(): void {
    this.stderrLog.length = 0;
    this.lastStderr = "";
  }

  // ─────────────────────────── mail commands ───────────────────────────

  /** `save -m <mailbox>` with the message on stdin. */
  async save(mailbox: string, message: string | Buffer, opts: RunOptions = {}): Promise<void> {
    await this.run(["save", "-m", mailbox], { ...opts, input: message });
  }

  /** `-f json fetch <fields> <query…>` → one object per message (all values are strings). */
  async fetch(fields: string, query: Query, opts: RunOptions = {}): Promise<Array<Record<string, string>>> {
    const { stdout } = await this.run(["-f", "json", "fetch", fields, ...queryArgs(query)], opts);
    const t = stdout.trim();
    if (t === "") return [];
    return JSON.parse(t) as Array<Record<string, string>>;
  }

  /** uid + flags (\Recent removed) of the messages matching `query` (default: all of `mailbox`). */
  async fetchFlags(mailbox: string, query: Query = ["all"]): Promise<Array<{ uid: number; flags: string[] }>> {
    const rows = await this.fetch("uid flags", ["mailbox", mailbox, ...queryArgs(query)]);
    return rows.map((r) => ({ uid: Number(r.uid), flags: parseFlags(r.flags) }));
  }

  /**
   * Exact bytes of one message (`fetch text` in pager format; JSON would replace
   * invalid UTF-8 with U+FFFD).
   */
  async fetchText(mailbox: string, uid: number): Promise<Buffer> {
    const { stdout } = await this.runBuffer(["fetch", "text", "mailbox", mailbox, "uid", String(uid)]);
    const prefix = Buffer.from("text:\n");
    if (stdout.length === 0) throw new Error(`fetchText: no message ${mailbox} uid ${uid}`);
    if (!stdout.subarray(0, prefix.length).equals(prefix)) throw new Error(`fetchText: unexpected output ${stdout.subarray(0, 40).toString()}`);
    return stdout.subarray(prefix.length);
  }

  /** `flags add|remove|replace <flags> <query…>` (flags space separated, e.g. "\\Seen $Label1"). */
  async flags(action: "add" | "remove" | "replace", flags: string, query: Query, opts: RunOptions = {}): Promise<void> {
    await this.run(["flags", action, flags, ...queryArgs(query)], opts);
  }

  async expunge(query: Query, opts: RunOptions = {}): Promise<void> {
    await this.run(["expunge", ...queryArgs(query)], opts);
  }

  async copy(dest: string, query: Query, opts: RunOptions = {}): Promise<void> {
    await this.run(["copy", dest, ...queryArgs(query)], opts);
  }

  async move(dest: string, query: Query, opts: RunOptions = {}): Promise<void> {
    await this.run(["move", dest, ...queryArgs(query)], opts);
  }

  /** `purge` (only does something for mdbox). */
  async purge(opts: RunOptions = {}): Promise<void> {
    await this.run(["purge"], opts);
  }

  /** `force-resync <mailbox>` ("*" = all). Prints "Rebuilding index" warnings on stderr. */
  async forceResync(mailbox: string, opts: RunOptions = {}): Promise<void> {
    await this.run(["force-resync", mailbox], opts);
  }

  async mailboxCreate(name: string, opts: RunOptions = {}): Promise<void> {
    await this.run(["mailbox", "create", name], opts);
  }

  async mailboxDelete(name: string, opts: RunOptions & { recursive?: boolean } = {}): Promise<void> {
    await this.run(["mailbox", "delete", ...(opts.recursive ? ["-r"] : []), name], opts);
  }

  /** `mailbox list` → mailbox names. */
  async mailboxList(opts: RunOptions = {}): Promise<string[]> {
    const { stdout } = await this.run(["-f", "json", "mailbox", "list"], opts);
    const t = stdout.trim();
    if (t === "") return [];
    return (JSON.parse(t) as Array<{ mailbox: string }>).map((r) => r.mailbox);
  }

  /** `mailbox list -s` → subscribed names as API names ("/" between levels), in doveadm's order. */
  async mailboxListSubscribed(opts: RunOptions = {}): Promise<string[]> {
    const { stdout } = await this.run(["-f", "json", "mailbox", "list", "-s"], opts);
    const t = stdout.trim();
    if (t === "") return [];
    return (JSON.parse(t) as Array<{ mailbox: string }>).map((r) => r.mailbox.split(this.separator).join("/"));
  }

  /**
   * `mailbox status <fields> <mailbox>` → {mailbox, field: value…} (values are strings).
   * Fields e.g. "messages uidnext uidvalidity highestmodseq guid".
   */
  async mailboxStatus(fields: string, mailbox: string, opts: RunOptions = {}): Promise<Record<string, string>> {
    const rows = await this.mailboxStatusAll(fields, mailbox, opts);
    const row = rows.find((r) => r.mailbox === mailbox) ?? rows[0];
    if (!row) throw new Error(`mailbox status: no output for ${mailbox}`);
    return row;
  }

  /** `mailbox status` for a pattern ("*") → one object per mailbox. */
  async mailboxStatusAll(fields: string, pattern: string, opts: RunOptions = {}): Promise<Array<Record<string, string>>> {
    const { stdout } = await this.run(["-f", "json", "mailbox", "status", fields, pattern], opts);
    const t = stdout.trim();
    if (t === "") return [];
    return JSON.parse(t) as Array<Record<string, string>>;
  }

  // ─────────────────────────── dumps ───────────────────────────

  /**
   * Raw `doveadm dump [-t type] <path> [extra…]` text (no privileges needed).
   * Throws on a non-zero exit (e.g. 75 + "Fatal: …" for broken files) unless allowFailure.
   */
  async dump(filePath: string, type?: string, opts: RunOptions & { extraArgs?: string[] } = {}): Promise<string> {
    const args = ["dump", ...(type ? ["-t", type] : []), filePath, ...(opts.extraArgs ?? [])];
    const { stdout } = await this.run(args, { ...opts, noLocation: true });
    return stdout;
  }

  /** Parsed `doveadm dump -t log <file>`. `file` may be a directory (→ <dir>/dovecot.index.log). */
  async dumpLog(file: string): Promise<LogDump> {
    const p = isDir(file) ? path.join(file, "dovecot.index.log") : file;
    return parseLogDump(await this.dump(p, "log"));
  }

  /** Parsed `doveadm dump -t index <dir|index file>`. */
  async dumpIndex(dirOrFile: string): Promise<IndexDump> {
    return parseIndexDump(await this.dump(dirOrFile, "index"));
  }

  // ─────────────────────────── housekeeping ───────────────────────────

  /** chown -R 65534:65534 the mail root (after the engine, running as root, wrote files). */
  async chownRoot(): Promise<void> {
    this.chownRootSync();
  }

  chownRootSync(): void {
    chownTree(this.root, ORACLE_UID, ORACLE_GID);
    if (this.location.includes(":ALT=")) chownTree(path.join(this.dir, "alt"), ORACLE_UID, ORACLE_GID);
    if (this.indexRoot !== undefined) chownTree(this.indexRoot, ORACLE_UID, ORACLE_GID);
  }

  /** Remove the oracle directory (kept when opts.keep / env KEEP_ORACLE). */
  async cleanup(): Promise<void> {
    if (this.keep) {
      console.log(`[dovecot-oracle] keeping ${this.dir}`);
      return;
    }
    await fs.promises.rm(this.dir, { recursive: true, force: true });
  }
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * lchown only what is not owned by uid:gid yet: chown(2) sets a file's ctime
 * even when nothing changes, and Dovecot's save date of sdbox and Maildir
 * messages (`date.saved`, `mailbox status firstsaved`) is the file's ctime.
 */
function chownTree(p: string, uid: number, gid: number): void {
  const st = fs.lstatSync(p);
  if (st.uid !== uid || st.gid !== gid) fs.lchownSync(p, uid, gid);
  if (st.isDirectory()) {
    for (const e of fs.readdirSync(p)) chownTree(path.join(p, e), uid, gid);
  }
}

/** Factory: `new DovecotOracle(format, opts)`. */
export function createOracle(format: MailFormat, opts: OracleOptions = {}): DovecotOracle {
  return new DovecotOracle(format, opts);
}

export interface SampleMessageOptions {
  from?: string;
  to?: string;
  subject?: string;
  /** RFC 822 date; default derived from i (2024-01-01 00:00 UTC + i minutes). */
  date?: string;
  messageId?: string;
  /** Extra header lines ("Name: value", without newline). */
  headers?: string[];
  /** Body text (default "Body of message <i>.\n"). */
  body?: string;
  /** Pad the body with filler lines until the message is at least this many bytes. */
  minSize?: number;
}

/** A small, distinct RFC 822 message with LF line endings. */
export function sampleMessage(i: number, opts: SampleMessageOptions = {}): string {
  const d = new Date(Date.UTC(2024, 0, 1, 0, 0, 0) + i * 60_000);
  const date = opts.date ?? d.toUTCString().replace("GMT", "+0000");
  const lines = [
    `From: ${opts.from ?? `Sender ${i} <sender${i}@example.com>`}`,
    `To: ${opts.to ?? "Recipient <rcpt@example.com>"}`,
    `Subject: ${opts.subject ?? `Test message ${i}`}`,
    `Date: ${date}`,
    `Message-ID: <${opts.messageId ?? `msg-${i}@mailstore.test`}>`,
    ...(opts.headers ?? []),
    "",
  ];
  let msg = lines.join("\n") + "\n" + (opts.body ?? `Body of message ${i}.\n`);
  if (opts.minSize !== undefined) {
    let n = 0;
    while (msg.length < opts.minSize) msg += `filler line ${n++} of message ${i}\n`;
  }
  return msg;
}

/** For a hung doveadm: its kernel wait channel and open files (Linux /proc), so that a timeout names the lock it waited on. */
function whatProcessWaitsFor(pid: number | undefined): string {
  if (pid === undefined) return "no pid";
  const read = (file: string): string => {
    try {
      return fs.readFileSync(file, "utf8").trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "EACCES") return "?";
      throw err;
    }
  };
  let fds: string[] = [];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`).map((fd) => fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT" && (err as NodeJS.ErrnoException).code !== "EACCES") throw err;
  }
  return `wchan ${read(`/proc/${pid}/wchan`)}; state ${read(`/proc/${pid}/stat`).split(" ")[2] ?? "?"}; open files ${fds.join(", ") || "?"}; blocked locks ${read("/proc/locks").split("\n").filter((l) => l.includes("->")).join("; ") || "none"}`;
}
