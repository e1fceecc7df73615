/**
 * The sync path, before and after the one-index-writer change, in one run:
 * log reads per CLI command, single-flag commit latency and reopen time, per
 * format. "Before" is another checkout of the engine, built (`tsc`), named
 * by MAILSTORE_BEFORE (see RESULTS.md for the commands); without it only
 * this checkout is measured. Both versions run in this process, alternated
 * round by round, on stores each builds itself through its own public API.
 *
 * Log reads are counted the same way for both: fs.readSync calls on a
 * descriptor whose file is a transaction log (`*.log`, `*.log.2`), header
 * peeks (≤ 64 bytes at offset 0) excepted.
 */
import * as fs from "node:fs";
import { createRequire, syncBuiltinESMExports } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { fmt, median } from "../util.js";

const FORMATS = ["sdbox", "mdbox", "maildir", "mbox"] as const;
type Format = (typeof FORMATS)[number];
const MESSAGES = 5_000;
const COMMITS = 200;
const REOPENS = 20;
const ROUNDS = 3;

/** What this benchmark needs of an engine version's public API (the same in both). */
interface Engine {
  label: string;
  openStorage(location: string, options?: { fsync?: "never" }): EngineStorage;
  main(argv: string[], io: unknown): Promise<number>;
}
interface EngineStorage {
  openMailbox(name: string): Promise<EngineMailbox>;
  close(): Promise<void>;
}
interface EngineMailbox {
  state: { records: { count: number } };
  transaction(): {
    append(m: { body: string; flags: string[] }): ReturnType<EngineMailbox["transaction"]>;
    flags(uids: Array<{ uid1: number; uid2: number }>, action: "add" | "remove", flags: string[]): ReturnType<EngineMailbox["transaction"]>;
    commit(): Promise<unknown>;
  };
}

/** The CommonJS fs object: patching it (then syncing) is what every ESM importer of node:fs sees. */
const fsModule = createRequire(import.meta.url)("node:fs") as typeof fs;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

async function loadEngine(root: string, label: string): Promise<Engine> {
  const api = await import(path.join(root, "dist/src/index.js"));
  const cli = await import(path.join(root, "dist/src/cli/main.js"));
  return { label, openStorage: api.openStorage, main: cli.main };
}

/** Counts log reads (see the module comment) while `fn` runs. */
async function countLogReads(fn: () => Promise<unknown>): Promise<number> {
  const real = fs.readSync;
  let reads = 0;
  const counting = ((fd: number, buffer: NodeJS.ArrayBufferView, ...rest: unknown[]) => {
    const [offsetOrOptions, length, position] = rest as [number, number, number | null];
    const len = typeof offsetOrOptions === "object" ? buffer.byteLength : length;
    const pos = typeof offsetOrOptions === "object" ? null : position;
    if ((Number(pos ?? 0) > 0 || len > 64) && /\.log(\.2)?$/.test(fdPath(fd))) reads++;
    return (real as (...a: unknown[]) => number)(fd, buffer, ...rest);
  }) as typeof fs.readSync;
  fsModule.readSync = counting;
  syncBuiltinESMExports();
  try {
    await fn();
  } finally {
    fsModule.readSync = real;
    syncBuiltinESMExports();
  }
  return reads;
}

function fdPath(fd: number): string {
  return fs.readlinkSync(`/proc/self/fd/${fd}`);
}

function location(format: Format, dir: string): string {
  if (format === "mbox") return `mbox:${dir}/mail:INBOX=${dir}/mail/inbox`;
  if (format === "maildir") return `maildir:${dir}/Maildir`;
  return `${format}:${dir}/mail`;
}

/** A store of MESSAGES messages made by `engine` itself. */
async function makeStore(engine: Engine, format: Format): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mailstore-syncpath-${format}-`));
  if (format === "mbox") {
    fs.mkdirSync(path.join(dir, "mail"), { recursive: true });
    fs.writeFileSync(path.join(dir, "mail", "inbox"), "");
  }
  const storage = engine.openStorage(location(format, dir), { fsync: "never" });
  const box = await storage.openMailbox("INBOX");
  for (let uid = 1; uid <= MESSAGES; uid += 500) {
    let tx = box.transaction();
    for (let u = uid; u < uid + 500; u++) tx = tx.append({ body: `From: a@example.com\nSubject: message ${u}\n\nbody ${u}\n`, flags: [] });
    await tx.commit();
  }
  await storage.close();
  return dir;
}

/** Seconds per single-flag commit (median of COMMITS), on an open mailbox. */
async function commitLatency(engine: Engine, format: Format, dir: string): Promise<number> {
  const storage = engine.openStorage(location(format, dir), { fsync: "never" });
  const box = await storage.openMailbox("INBOX");
  const times: number[] = [];
  for (let i = 0; i < COMMITS; i++) {
    const uid = 1 + ((i * 7919) % MESSAGES);
    const t0 = process.hrtime.bigint();
    await box.transaction().flags([{ uid1: uid, uid2: uid }], i % 2 === 0 ? "add" : "remove", ["\\Flagged"]).commit();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  await storage.close();
  return median(times);
}

/** Seconds to open the storage and the mailbox and count its messages (median of REOPENS). */
async function reopenTime(engine: Engine, format: Format, dir: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < REOPENS; i++) {
    const t0 = process.hrtime.bigint();
    const storage = engine.openStorage(location(format, dir), { fsync: "never" });
    const box = await storage.openMailbox("INBOX");
    if (box.state.records.count !== MESSAGES) throw new Error(`${engine.label} ${format}: ${box.state.records.count} messages`);
    await storage.close();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return median(times);
}

/** The CLI commands whose log reads are counted. */
function cliCommands(loc: string): Array<{ name: string; argv: string[] }> {
  return [
    { name: "mailbox status", argv: ["-l", loc, "mailbox", "status", "messages", "INBOX"] },
    { name: "flags add", argv: ["-l", loc, "flags", "add", "\\Seen", "mailbox", "INBOX", "uid", "7"] },
    { name: "fetch", argv: ["-l", loc, "fetch", "uid flags", "mailbox", "INBOX", "uid", "7"] },
    { name: "expunge", argv: ["-l", loc, "expunge", "mailbox", "INBOX", "uid", "9"] },
  ];
}

async function cliLogReads(engine: Engine, format: Format, dir: string): Promise<Record<string, number>> {
  const io = { out: () => undefined, err: (t: string) => process.stderr.write(t), isTTY: false, readStdin: async () => Buffer.alloc(0), env: { HOME: dir } };
  const out: Record<string, number> = {};
  for (const cmd of cliCommands(location(format, dir))) {
    let code = 0;
    out[cmd.name] = await countLogReads(async () => (code = await engine.main(cmd.argv, io)));
    if (code !== 0) throw new Error(`${engine.label}: mailstore ${cmd.argv.join(" ")} exited ${code}`);
  }
  return out;
}

export async function syncPathBench(): Promise<string[]> {
  const engines = [await loadEngine(repoRoot, "after")];
  const beforeRoot = process.env.MAILSTORE_BEFORE;
  if (beforeRoot) engines.unshift(await loadEngine(path.resolve(beforeRoot), "before"));
  const rows: string[] = [];
  for (const format of FORMATS) {
    const commit = new Map<string, number[]>();
    const reopen = new Map<string, number[]>();
    const reads = new Map<string, Record<string, number>>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const engine of round % 2 === 0 ? engines : [...engines].reverse()) {
        const dir = await makeStore(engine, format);
        try {
          commit.set(engine.label, [...(commit.get(engine.label) ?? []), await commitLatency(engine, format, dir)]);
          reopen.set(engine.label, [...(reopen.get(engine.label) ?? []), await reopenTime(engine, format, dir)]);
          if (round === 0) reads.set(engine.label, await cliLogReads(engine, format, dir));
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }
    }
    for (const engine of engines) {
      const c = median(commit.get(engine.label)!);
      const r = median(reopen.get(engine.label)!);
      const cliReads = Object.entries(reads.get(engine.label)!).map(([k, v]) => `${k} ${v}`).join(", ");
      const vs = engine.label === "after" && beforeRoot
        ? `commit ${fmt(c / median(commit.get("before")!))}× before's, reopen ${fmt(r / median(reopen.get("before")!))}× before's`
        : "";
      rows.push(`| ${format} ${MESSAGES.toLocaleString("en")} messages, ${engine.label}: single-flag commit / reopen | ${fmt(c * 1e6)} µs / ${fmt(r * 1e3)} ms | log reads per CLI command: ${cliReads} | ${vs} |`);
    }
  }
  return rows;
}
