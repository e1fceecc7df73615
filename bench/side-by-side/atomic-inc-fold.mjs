// The deferred fold a purge pays for after an expunge (issue #11), alone, in a fresh process:
// an IndexWriter appends 20,000 messages with a `ref` field of 1, then one EXT_ATOMIC_INC of -1
// for the first 10,000 uids; the first read of its state folds them, and is timed.
//   node --expose-gc bench/side-by-side/atomic-inc-fold.mjs <dist> [messages]
// <dist> is a build's dist directory (another checkout's too): alternate two builds run by run.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const [dist, countArg] = process.argv.slice(2);
const { IndexWriter } = await import(path.resolve(dist, "src/index-io/writer.js"));
const { refIntro, refSetRecords, refIncRecordsOf } = await import(path.resolve(dist, "src/projections/mdbox-map-format.js"));
const { extRecordAt } = await import(path.resolve(dist, "src/projections/read.js"));
const count = Number(countArg ?? 20000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-inc-fold-"));
try {
  const writer = IndexWriter.open(path.join(dir, "dovecot.map.index"), { fsync: "never", create: {} });
  const ext = { external: false, sync: false };
  const uids = Array.from({ length: count }, (_, i) => i + 1);
  await writer.sync(async (sync) => {
    await sync.append([[{ type: "append", ...ext, messages: uids.map((uid) => ({ uid, flags: 0 })) }, refIntro(ext)], refSetRecords(uids.map((mapUid) => ({ mapUid, refcount: 1 })), ext)]);
    // Folded now: what is timed is the expunge's record alone.
    void sync.state;
    await sync.append([refIncRecordsOf(uids.slice(0, count / 2).map((uid) => ({ uid, diff: -1 })), ext)]);
  }, "none");
  globalThis.gc?.();
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const state = writer.state;
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(c0);
  if (state.records.count !== count || extRecordAt(state, 1, "ref")[0] !== 0 || extRecordAt(state, count, "ref")[0] !== 1) throw new Error("not the fold expected");
  await writer.close();
  console.log(JSON.stringify({ wallMs: +wallMs.toFixed(3), cpuMs: (c.user + c.system) / 1000 }));
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
