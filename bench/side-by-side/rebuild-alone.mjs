// The embedded rebuild step of vs-dovecot alone, for A/B runs of two builds by wall and CPU time.
//   node --expose-gc bench/side-by-side/rebuild-alone.mjs <dist> setup 20000   (once: the sample mbox)
//   node --expose-gc bench/side-by-side/rebuild-alone.mjs <dist> run           (vs-dovecot's steps, then the rebuild timed)
// `run` does in one process what vs-dovecot's embedded column does before its rebuild (import,
// fetch, flag all, flag one, expunge half, purge, reopen: the code they share with a rebuild is
// as warm as there), drops the indexes as that step does, and times the rebuild alone. It prints
// timeStep's figures (timed-alone.mjs: wallMs, cpuMs, mainMs, …); PROF=<file> also writes a
// .cpuprofile of the rebuild alone. <dist> is a build's dist directory (another checkout's too):
// alternate two builds run by run, as their timings drift with the machine's load.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const [dist, mode, sizeArg] = process.argv.slice(2);
const { EmbeddedSteps, dropIndexes } = await import(path.resolve(dist, "bench/side-by-side/embedded-steps.js"));
const { timeStep } = await import("./timed-alone.mjs");
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
    const measured = await timeStep(() => steps.rebuild());
    await steps.close();
    console.log(JSON.stringify(measured));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
} else {
  throw new Error("usage: rebuild-alone.mjs <dist> setup <messages> | run");
}
