/**
 * Wall-clock time with sub-millisecond digits, as performance.timeOrigin +
 * performance.now() gives it (monotonic from one reading of the clock at
 * start), from process.hrtime instead: the global `performance` loads
 * perf_hooks and a dozen modules (1.5–3 ms) on first use, in a command that
 * needs nothing else of them (the first dbox temp name, GUID or Maildir
 * name of a save or a purge).
 */
const originMs = Date.now();
const originNs = process.hrtime.bigint();

/** Milliseconds since the epoch, with a fraction. */
export function wallClockMs(): number {
  return originMs + Number(process.hrtime.bigint() - originNs) / 1e6;
}
