// The embedded rebuild step of vs-dovecot alone, and the fold of a log the rebuild creates,
// for A/B runs of two builds by CPU time (user + system of every thread).
//   node --expose-gc bench/side-by-side/purge-alone.mjs <dist> setup 20000    (once: import, flag all, flag one)
//   node --expose-gc bench/side-by-side/rebuild-cpu.mjs <dist> setup          (once: a copy of that store, expunge half, purge)
//   node --expose-gc bench/side-by-side/rebuild-cpu.mjs <dist> rebuild 5     (5 rebuilds after dropping every index, each on a fresh copy)
//   node --expose-gc bench/side-by-side/rebuild-cpu.mjs <dist> created 20000 (a mailbox log created with 20000 appends, folded once, cold)
//   node --expose-gc bench/side-by-side/rebuild-cpu.mjs <dist> replay        (the setup store's map log replayed from scratch, cold)
// <dist> is a build's dist directory (another checkout's too): alternate two builds process by
// process, as their timings drift with the machine's load. Each mode prints one JSON line; each
// figure is timed-alone.mjs's cpuMs (PROF=<file> also writes a .cpuprofile of the last step timed).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const [dist, mode, arg] = process.argv.slice(2);
const load = (p) => import(path.resolve(dist, p));
const base = path.join(os.tmpdir(), "mailstore-rebuild-cpu");
const { timeStep } = await import("./timed-alone.mjs");
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

if (mode === "setup") {
  // The store vs-dovecot's rebuild step finds: purge-alone's (import, flag all, flag one), then its expunge and purge.
  const { EmbeddedSteps } = await load("bench/side-by-side/embedded-steps.js");
  const from = path.join(os.tmpdir(), "mailstore-purge-alone");
  const size = Number(fs.readFileSync(path.join(from, "size"), "utf8"));
  fs.rmSync(base, { recursive: true, force: true });
  fs.cpSync(path.join(from, "store"), path.join(base, "store"), { recursive: true });
  const steps = new EmbeddedSteps(`mdbox:${base}/store`, "", size / 2);
  await steps.expungeHalf();
  await steps.purge();
  await steps.close();
} else if (mode === "rebuild") {
  const { EmbeddedSteps, dropIndexes } = await load("bench/side-by-side/embedded-steps.js");
  const runs = [];
  for (let i = 0; i < Number(arg ?? 5); i++) {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-rebuild-cpu-"));
    try {
      fs.cpSync(path.join(base, "store"), path.join(work, "store"), { recursive: true });
      dropIndexes(path.join(work, "store"));
      const steps = new EmbeddedSteps(`mdbox:${work}/store`, "", 0);
      runs.push((await timeStep(async () => {
        await steps.rebuild();
        await steps.close();
      })).cpuMs);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }
  console.log(JSON.stringify({ medianCpuMs: median(runs), firstCpuMs: runs[0], runs }));
} else if (mode === "created") {
  const { appendRecords } = await load("src/drivers/mdbox/mailbox-writer.js");
  const { initialMailboxRecords } = await load("src/drivers/mdbox/mailbox-format.js");
  const { TransactionLog } = await load("src/log/log.js");
  const { stateOfCreatedLog } = await load("src/index-io/load-state.js");
  const count = Number(arg);
  const items = Array.from({ length: count }, (_, i) => ({
    mapUid: i + 1, guid128: Uint8Array.from({ length: 16 }, (_, k) => (i * 31 + k) & 0xff), flags: 0, keywords: [], saveDate: 1_700_000_000 + i,
  }));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-rebuild-cpu-"));
  try {
    const put = appendRecords(1, items);
    const initialRecords = initialMailboxRecords({ mapUidValidity: 7, mailboxGuid: new Uint8Array(16).fill(3), flags: 0 }, 11);
    const created = TransactionLog.createIfMissingDecoded(path.join(work, "dovecot.index"), { initialRecords, transactions: [put.records] }, "never");
    // A build that folds the created log's EXT_REC_UPDATEs as columns takes them as a second argument.
    let state;
    const foldMs = (await timeStep(() => void (state = stateOfCreatedLog(created, put.columns ?? [])))).cpuMs;
    if (state.records.count !== count) throw new Error(`folded ${state.records.count} records, not ${count}`);
    console.log(JSON.stringify({ foldCpuMs: foldMs }));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
} else if (mode === "replay") {
  const { loadState } = await load("src/index-io/load-state.js");
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-rebuild-cpu-"));
  try {
    fs.copyFileSync(path.join(base, "store", "storage", "dovecot.map.index.log"), path.join(work, "dovecot.map.index.log"));
    let state;
    const replayMs = (await timeStep(() => void (state = loadState(path.join(work, "dovecot.map.index"))))).cpuMs;
    console.log(JSON.stringify({ replayCpuMs: replayMs, records: state.records.count }));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
} else {
  throw new Error("usage: rebuild-cpu.mjs <dist> setup (after purge-alone.mjs setup <messages>) | rebuild [runs] | created <messages> | replay");
}
