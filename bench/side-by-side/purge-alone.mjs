// The embedded purge step of vs-dovecot alone, for A/B runs of two builds by CPU time.
//   node --expose-gc bench/side-by-side/purge-alone.mjs <dist> setup 20000   (once: import, flag all, flag one)
//   node --expose-gc bench/side-by-side/purge-alone.mjs <dist> run           (a copy of that store: expunge half, then purge timed)
// `run` prints timeStep's figures (timed-alone.mjs: wallMs, cpuMs, mainMs, …); PROF=<file> also writes a
// .cpuprofile of the purge alone. <dist> is a build's dist directory (another checkout's too):
// alternate two builds run by run, as their timings drift with the machine's load.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const [dist, mode, sizeArg] = process.argv.slice(2);
const { EmbeddedSteps } = await import(path.resolve(dist, "bench/side-by-side/embedded-steps.js"));
const { timeStep } = await import("./timed-alone.mjs");
const base = path.join(os.tmpdir(), "mailstore-purge-alone");
if (mode === "setup") {
  const { writeSampleMbox } = await import(path.resolve(dist, "bench/dovecot.js"));
  const size = Number(sizeArg);
  fs.rmSync(base, { recursive: true, force: true });
  fs.mkdirSync(path.join(base, "src", "mail"), { recursive: true });
  const inbox = path.join(base, "src", "inbox");
  writeSampleMbox(inbox, size, 2250);
  const steps = new EmbeddedSteps(`mdbox:${base}/store`, `mbox:${base}/src/mail:INBOX=${inbox}`, size / 2);
  await steps.import();
  await steps.flagAll();
  await steps.flagOne(size / 2 + 1);
  await steps.close();
  fs.writeFileSync(path.join(base, "size"), String(size));
} else if (mode === "run") {
  const size = Number(fs.readFileSync(path.join(base, "size"), "utf8"));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-purge-run-"));
  try {
    fs.cpSync(path.join(base, "store"), path.join(work, "store"), { recursive: true });
    const steps = new EmbeddedSteps(`mdbox:${work}/store`, "", size / 2);
    // As in vs-dovecot: the purge follows the expunge in the same process, the map in memory.
    await steps.expungeHalf();
    const measured = await timeStep(() => steps.purge());
    await steps.close();
    console.log(JSON.stringify(measured));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
} else {
  throw new Error("usage: purge-alone.mjs <dist> setup <messages> | run");
}
