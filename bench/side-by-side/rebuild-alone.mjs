// The embedded rebuild step of vs-dovecot alone, for A/B runs of two builds by wall and CPU time.
//   node --expose-gc bench/side-by-side/rebuild-alone.mjs <dist> setup 20000   (once: the sample mbox)
//   node --expose-gc bench/side-by-side/rebuild-alone.mjs <dist> run           (vs-dovecot's steps, then the rebuild timed)
// `run` does in one process what vs-dovecot's embedded column does before its rebuild (import,
// fetch, flag all, flag one, expunge half, purge, reopen: the code they share with a rebuild is
// as warm as there), drops the indexes as that step does, and times the rebuild alone. It prints
// {wallMs, cpuMs (user + system of every thread), mainMs (the main thread's time on a CPU, from
// /proc/thread-self/schedstat where Linux has it: what the rebuild's JavaScript and its syscalls
// took, without the waits for a CPU that other processes' load adds to wallMs), …}; PROF=<file> also writes a .cpuprofile of
// the rebuild alone. <dist> is a build's dist directory (another checkout's too): alternate two
// builds run by run, as their timings drift with the machine's load.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const [dist, mode, sizeArg] = process.argv.slice(2);
const { EmbeddedSteps, dropIndexes } = await import(path.resolve(dist, "bench/side-by-side/embedded-steps.js"));
const base = path.join(os.tmpdir(), "mailstore-rebuild-alone");
if (mode === "setup") {
  const { writeSampleMbox } = await import(path.resolve(dist, "bench/dovecot.js"));
  const size = Number(sizeArg);
  fs.rmSync(base, { recursive: true, force: true });
  fs.mkdirSync(path.join(base, "src", "mail"), { recursive: true });
  writeSampleMbox(path.join(base, "src", "inbox"), size, 2250);
  fs.writeFileSync(path.join(base, "size"), String(size));
} else if (mode === "run") {
  const size = Number(fs.readFileSync(path.join(base, "size"), "utf8"));
  const half = Math.floor(size / 2);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-rebuild-run-"));
  try {
    const store = path.join(work, "store");
    const steps = new EmbeddedSteps(`mdbox:${store}`, `mbox:${base}/src/mail:INBOX=${path.join(base, "src", "inbox")}`, half);
    await steps.import();
    await steps.fetchAll();
    await steps.flagAll();
    await steps.flagOne(half + 1);
    await steps.expungeHalf();
    await steps.purge();
    await steps.reopen();
    dropIndexes(store);
    let session;
    if (process.env.PROF) {
      const { Session } = await import("node:inspector/promises");
      session = new Session();
      session.connect();
      await session.post("Profiler.enable");
      await session.post("Profiler.setSamplingInterval", { interval: 100 });
      await session.post("Profiler.start");
    }
    const m0 = mainThreadOnCpuNs();
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await steps.rebuild();
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const c = process.cpuUsage(c0);
    const mainMs = m0 === undefined ? undefined : +((mainThreadOnCpuNs() - m0) / 1e6).toFixed(2);
    if (session) {
      const { profile } = await session.post("Profiler.stop");
      fs.writeFileSync(process.env.PROF, JSON.stringify(profile));
      session.disconnect();
    }
    await steps.close();
    console.log(JSON.stringify({ wallMs: +wallMs.toFixed(2), cpuMs: +((c.user + c.system) / 1000).toFixed(2), mainMs, userMs: c.user / 1000, sysMs: c.system / 1000 }));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
} else {
  throw new Error("usage: rebuild-alone.mjs <dist> setup <messages> | run");
}

/** Nanoseconds the calling thread has run on a CPU (the first field of /proc/thread-self/schedstat), or undefined without it. */
function mainThreadOnCpuNs() {
  try {
    return Number(fs.readFileSync("/proc/thread-self/schedstat", "utf8").split(" ")[0]);
  } catch (err) {
    if (err.code === "ENOENT") return undefined;
    throw err;
  }
}
