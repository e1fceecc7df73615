// doveadm's purge of the store purge-alone.mjs purges, for rounds against it (whole doveadm process, timed as
// vs-dovecot times doveadm: DoveadmRunner.measure).
//   node --expose-gc bench/side-by-side/purge-alone.mjs <dist> setup 20000          (once: the engine's store)
//   node bench/side-by-side/doveadm-purge-alone.mjs <dist> setup                     (once: that store after the engine's expunge of half)
//   node bench/side-by-side/doveadm-purge-alone.mjs <dist> run                       (a copy of it purged by doveadm; prints {wallMs})
// Needs root (doveadm drops to uid 65534, which must own the copy).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const [dist, mode] = process.argv.slice(2);
const { DoveadmRunner } = await import(path.resolve(dist, "bench/dovecot.js"));
const base = path.join(os.tmpdir(), "mailstore-purge-alone");
const expunged = path.join(base, "expunged");
if (mode === "setup") {
  const { EmbeddedSteps } = await import(path.resolve(dist, "bench/side-by-side/embedded-steps.js"));
  const size = Number(fs.readFileSync(path.join(base, "size"), "utf8"));
  fs.rmSync(expunged, { recursive: true, force: true });
  fs.cpSync(path.join(base, "store"), expunged, { recursive: true });
  const steps = new EmbeddedSteps(`mdbox:${expunged}`, "", size / 2);
  await steps.expungeHalf();
  await steps.close();
} else if (mode === "run") {
  const doveadm = new DoveadmRunner();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-doveadm-purge-"));
  try {
    fs.chmodSync(work, 0o755);
    fs.cpSync(expunged, path.join(work, "store"), { recursive: true });
    doveadm.chown(path.join(work, "store"));
    const { seconds } = doveadm.measure(`mdbox:${work}/store`, ["purge"]);
    console.log(JSON.stringify({ wallMs: +(seconds * 1000).toFixed(2) }));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    doveadm.cleanup();
  }
} else {
  throw new Error("usage: doveadm-purge-alone.mjs <dist> setup | run");
}
