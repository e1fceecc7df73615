import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { TransactionLog } from "../../src/log/log.js";
import type { LogRecord, LogTransaction } from "../../src/log/types.js";
import { loadState } from "../../src/index-io/load-state.js";
import { IndexWriter } from "../../src/index-io/writer.js";
import { applyTransaction, replay } from "../../src/projections/apply.js";
import { writeCheckpoint } from "../../src/index-io/checkpoint-file.js";
import { emptyIndexMap, type IndexMapState } from "../../src/projections/state.js";
import { fmt, measure, median } from "../util.js";

const ext = { external: true, sync: false };

/** Transactions that enable modseqs and append `count` messages (1,000 per transaction). */
function appendTransactions(count: number): LogRecord[][] {
  const txs: LogRecord[][] = [[
    { type: "ext-intro", ...ext, intros: [{ extId: 0xffffffff, resetId: 0, hdrSize: 16, recordSize: 8, recordAlign: 8, flags: 1, name: "modseq" }] },
    { type: "ext-hdr", ...ext, patches: [{ offset: 0, data: new Uint8Array(16) }] },
    { type: "header-update", ...ext, patches: [{ offset: 24, data: Uint8Array.of(1, 0, 0, 0x65) }] },
  ]];
  for (let uid = 1; uid <= count; uid += 1000) {
    const messages = [];
    for (let u = uid; u < Math.min(uid + 1000, count + 1); u++) messages.push({ uid: u, flags: u % 3 === 0 ? 8 : 0 });
    txs.push([{ type: "append", ...ext, messages }]);
  }
  return txs;
}

function flagRecord(uid: number, seen: boolean): LogRecord {
  return { type: "flag-update", external: false, sync: false, updates: [{ uid1: uid, uid2: uid, addFlags: seen ? 8 : 0, removeFlags: seen ? 0 : 8, modseqIncFlag: 0 }] };
}

function tmpPrefix(): { dir: string; prefix: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-bench-"));
  return { dir, prefix: path.join(dir, "dovecot.index") };
}

/** Open a 100k-message mailbox from dovecot.index plus a 1,000-record tail. */
export async function openBench(): Promise<string> {
  const { dir, prefix } = tmpPrefix();
  const log = TransactionLog.open(prefix, { create: {}, fsync: "never" });
  await log.appendTransactions(appendTransactions(100_000));
  writeCheckpoint(prefix, loadState(prefix), { fsync: false });
  const tail: LogRecord[][] = [];
  for (let i = 0; i < 1000; i++) tail.push([flagRecord(1 + ((i * 97) % 100_000), i % 2 === 0)]);
  await log.appendTransactions(tail);
  await log.close();
  let count = 0;
  const r = await measure("open", () => { count = loadState(prefix).records.count; });
  fs.rmSync(dir, { recursive: true, force: true });
  return `| open a ${count.toLocaleString("en")}-message mailbox: dovecot.index + 1,000-record log tail | ${fmt(r.meanSeconds * 1000)} ms ±${fmt(r.rme, 2)}% | | |`;
}

const REPLAY_ROUNDS = 11;
const REPLAY_CHILD = fileURLToPath(new URL("./replay-child.js", import.meta.url));

/**
 * Writes the replay benchmark's log at `prefix`: 100,000 appends, then
 * transactions of a flag update and a keyword update of one message each,
 * up to 1,000,000 records. Returns the number of records.
 */
export async function writeReplayLog(prefix: string): Promise<number> {
  const log = TransactionLog.open(prefix, { create: {}, fsync: "never" });
  const appends = appendTransactions(100_000);
  let records = appends.reduce((n, t) => n + t.length + (t.length > 1 ? 1 : 0), 0);
  await log.appendTransactions(appends);
  for (let i = 0; records < 1_000_000; ) {
    const chunk: LogRecord[][] = [];
    for (; chunk.length < 10_000 && records < 1_000_000; i++) {
      const uid = 1 + ((i * 7919) % 100_000);
      chunk.push([flagRecord(uid, i % 2 === 0), { type: "keyword-update", external: false, sync: false, modifyType: i % 2 ? "remove" : "add", name: `$Label${i % 5}`, ranges: [{ uid1: uid, uid2: uid }] }]);
      records += 3;
    }
    await log.appendTransactions(chunk);
  }
  await log.close();
  return records;
}

/** One fresh process running `op` twice on the log of `prefix` (see replay-child.ts), with the code of `dist` (this checkout's by default): both calls' wall and CPU ms. */
export function replayChild(op: string, prefix: string, dist?: string): { wallMs: number[]; cpuMs: number[] } {
  const child = spawnSync(process.execPath, ["--expose-gc", REPLAY_CHILD, op, prefix, "2", ...(dist === undefined ? [] : [dist])], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  if (child.status !== 0) throw new Error(`replay-child ${op} exited ${child.status ?? child.signal}`);
  return JSON.parse(child.stdout) as { wallMs: number[]; cpuMs: number[] };
}

/**
 * Full replay (read, decode, fold) of a log with >= 1M records, against
 * decoding it alone. Every figure comes from a fresh process that only reads
 * the log (see replay-child.ts: in the process that wrote it, V8 pretenured
 * the decoder's objects and the allocating decode measured 6-9× its cost),
 * the three alternated, the order reversed every other round. Each child
 * calls twice: the first call (cold: the JIT still compiling) is reported
 * apart, the second is the figure.
 */
export async function replayBench(): Promise<string> {
  const { dir, prefix } = tmpPrefix();
  const records = await writeReplayLog(prefix);
  const size = fs.statSync(prefix + ".log").size;
  const ops = ["decode", "decode-reused", "replay"];
  const runs = ops.map(() => ({ warmWall: [] as number[], warmCpu: [] as number[], coldWall: [] as number[] }));
  const ratios = { decode: [] as number[], reused: [] as number[], decodeCpu: [] as number[], reusedCpu: [] as number[] };
  for (let round = 0; round < REPLAY_ROUNDS; round++) {
    const order = round % 2 === 0 ? [0, 1, 2] : [2, 1, 0];
    for (const i of order) {
      const { wallMs, cpuMs } = replayChild(ops[i], prefix);
      runs[i].coldWall.push(wallMs[0]);
      runs[i].warmWall.push(wallMs[1]);
      runs[i].warmCpu.push(cpuMs[1]);
    }
    const [d, r, p] = runs;
    ratios.decode.push(p.warmWall[round] / d.warmWall[round]);
    ratios.reused.push(p.warmWall[round] / r.warmWall[round]);
    ratios.decodeCpu.push(p.warmCpu[round] / d.warmCpu[round]);
    ratios.reusedCpu.push(p.warmCpu[round] / r.warmCpu[round]);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const [decode, reused, replayRun] = runs.map((r) => ({ wall: median(r.warmWall), cpu: median(r.warmCpu), cold: median(r.coldWall) }));
  const seconds = replayRun.wall / 1000;
  return `| full replay (read + decode + fold) of a ${records.toLocaleString("en")}-record log, ${fmt(size / 1e6)} MB, 100k messages | ${fmt(seconds)} s (CPU ${fmt(replayRun.cpu / 1000)} s; first call ${fmt(replayRun.cold / 1000)} s) | ${fmt(records / seconds / 1e6)} M records/s | ${fmt(median(ratios.decode))}× the read + decode alone (${fmt(decode.wall)} ms, CPU ${fmt(median(ratios.decodeCpu))}×; first call ${fmt(decode.cold)} ms); ${fmt(median(ratios.reused))}× the decode the replay does (reused objects, ${fmt(reused.wall)} ms, CPU ${fmt(median(ratios.reusedCpu))}×). Medians of ${REPLAY_ROUNDS} rounds of fresh processes, alternated; ratios are medians of each round's ratio |`;
}

/** One single-flag commit at 10k, 100k, 1M messages: log append under the lock + projection advance. */
export async function commitBench(): Promise<string[]> {
  const rows: string[] = [];
  for (const count of [10_000, 100_000, 1_000_000]) {
    const { dir, prefix } = tmpPrefix();
    const log = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    await log.appendTransactions(appendTransactions(count));
    let state: IndexMapState = loadState(prefix);
    let i = 0;
    const tx: LogTransaction = (await log.append([flagRecord(1, true)])).transactions[0];
    state = applyTransaction(state, tx);
    const base = state;
    // Projection alone: a one-flag transaction applied to a state of `count` messages.
    const applyOnly = await measure("apply", () => {
      i++;
      applyTransaction(base, { ...tx, entries: [{ ...tx.entries[0], record: flagRecord(1 + ((i * 7919) % count), i % 2 === 0) }] });
    });
    await log.close();
    // End to end, through the index writer every commit takes: lock, catch up, append, fold what was written (with effects), checkpoint policy.
    const writer = IndexWriter.open(prefix, { fsync: "never" });
    const n = 2000;
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < n; k++) {
      await writer.sync(async (sync) => sync.append([[flagRecord(1 + ((k * 7919) % count), k % 2 === 0)]]));
    }
    const commitUs = Number(process.hrtime.bigint() - t0) / 1e3 / n;
    if (writer.state.records.count !== count) throw new Error("commit bench: the writer lost messages");
    await writer.close();
    fs.rmSync(dir, { recursive: true, force: true });
    rows.push(`| single-flag commit at ${count.toLocaleString("en")} messages | ${fmt(commitUs)} µs per commit (index writer: lock, append, fold with effects) | projection alone: ${fmt(applyOnly.meanSeconds * 1e6)} µs ±${fmt(applyOnly.rme, 2)}% | |`);
  }
  return rows;
}

/** Memory per message of the index map at 1M messages (uid, flags, modseq). */
export async function memoryBench(): Promise<string> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return "| memory per message at 1M messages | (run node with --expose-gc) | | |";
  // Transactions are made lazily, so that only the state stays alive.
  function* transactions(): Generator<LogTransaction> {
    let i = 0;
    for (const records of appendTransactions(1_000_000)) {
      const position = { fileSeq: 1, offset: 40 + i };
      i++;
      yield { position, end: { fileSeq: 1, offset: 40 + i }, modseq: 2n, external: true, framed: records.length > 1, entries: records.map((record) => ({ position, size: 16, modseq: 2n, record })) };
    }
  }
  const used = () => { gc(); gc(); const m = process.memoryUsage(); return m.heapUsed + m.arrayBuffers; };
  const before = used();
  const state = replay(transactions(), emptyIndexMap({ indexId: 1 }));
  const bytes = used() - before;
  return `| memory of the index map at ${state.records.count.toLocaleString("en")} messages (uid, flags, modseq: ${state.records.recordSize}-byte rows) | ${fmt(bytes / state.records.count)} bytes/message | ${fmt(bytes / 1e6)} MB in all | |`;
}
