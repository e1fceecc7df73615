// The embedded fetch step of vs-dovecot (`fetch text all`) alone, for A/B runs of two builds by CPU time.
//   node --expose-gc bench/side-by-side/fetch-alone.mjs <dist> setup 20000   (once: the mbox written, imported into a store)
//   node --expose-gc bench/side-by-side/fetch-alone.mjs <dist> run           (the store opened, then fetchAll timed)
//   node --expose-gc bench/side-by-side/fetch-alone.mjs <dist> run-import    (as vs-dovecot: an import into a new store, then fetchAll timed)
// Fetch is read-only, so `run` reads the setup's store itself (no copy); `run-import` imports the setup's
// mbox into a temporary store, as vs-dovecot's embedded steps do, and fetches right after in the same process.
// Prints timeStep's figures (timed-alone.mjs) plus the step's minor page faults (`faults`); PROF=<file> also
// writes a .cpuprofile of the fetch alone. <dist> is a build's dist directory (another checkout's too):
// alternate two builds run by run, as their timings drift with the machine's load.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const [dist, mode, sizeArg] = process.argv.slice(2);
const { EmbeddedSteps } = await import(path.resolve(dist, "bench/side-by-side/embedded-steps.js"));
const { timeStep } = await import("./timed-alone.mjs");
const base = path.join(os.tmpdir(), "mailstore-fetch-alone");
const inbox = path.join(base, "src", "inbox");
const source = `mbox:${base}/src/mail:INBOX=${inbox}`;

/** fetchAll timed, with the minor page faults it took (fresh memory is what these VMs charge most for). */
async function timedFetch(steps) {
  const f0 = process.resourceUsage().minorPageFault;
  const measured = await timeStep(() => steps.fetchAll());
  return { ...measured, faults: process.resourceUsage().minorPageFault - f0 };
}

if (mode === "setup") {
  const { writeSampleMbox } = await import(path.resolve(dist, "bench/dovecot.js"));
  const size = Number(sizeArg);
  fs.rmSync(base, { recursive: true, force: true });
  fs.mkdirSync(path.join(base, "src", "mail"), { recursive: true });
  writeSampleMbox(inbox, size, 2250);
  const steps = new EmbeddedSteps(`mdbox:${base}/store`, source, size / 2);
  await steps.import();
  await steps.close();
  fs.writeFileSync(path.join(base, "size"), String(size));
} else if (mode === "run") {
  const size = Number(fs.readFileSync(path.join(base, "size"), "utf8"));
  const steps = new EmbeddedSteps(`mdbox:${base}/store`, "", size / 2);
  const measured = await timedFetch(steps);
  await steps.close();
  console.log(JSON.stringify(measured));
} else if (mode === "run-import") {
  const size = Number(fs.readFileSync(path.join(base, "size"), "utf8"));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-fetch-run-"));
  try {
    const steps = new EmbeddedSteps(`mdbox:${work}/store`, source, size / 2);
    await steps.import();
    const measured = await timedFetch(steps);
    await steps.close();
    console.log(JSON.stringify(measured));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
} else {
  throw new Error("usage: fetch-alone.mjs <dist> setup <messages> | run | run-import");
}
