// What the *-alone.mjs scripts time one step with: wall clock, CPU of every thread, and the main
// thread's own time on a CPU; PROF=<file> also writes a .cpuprofile of the step alone.
import * as fs from "node:fs";

/**
 * Runs `step` and measures it.
 * @returns {wallMs, cpuMs (user + system of every thread), mainMs (the main thread's time on a CPU,
 *   from /proc/thread-self/schedstat where Linux has it: what the step's JavaScript and its syscalls
 *   took, without the waits for a CPU that other processes' load adds to wallMs), userMs, sysMs,
 *   minflt (minor page faults of the process: memory touched for the first time, ~15 µs each on these VMs)}
 */
export async function timeStep(step) {
  let session;
  if (process.env.PROF) {
    const { Session } = await import("node:inspector/promises");
    session = new Session();
    session.connect();
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 100 });
    await session.post("Profiler.start");
  }
  const f0 = process.resourceUsage().minorPageFault;
  const m0 = mainThreadOnCpuNs();
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await step();
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(c0);
  const minflt = process.resourceUsage().minorPageFault - f0;
  const mainMs = m0 === undefined ? undefined : +((mainThreadOnCpuNs() - m0) / 1e6).toFixed(2);
  if (session) {
    const { profile } = await session.post("Profiler.stop");
    fs.writeFileSync(process.env.PROF, JSON.stringify(profile));
    session.disconnect();
  }
  return { wallMs: +wallMs.toFixed(2), cpuMs: +((c.user + c.system) / 1000).toFixed(2), mainMs, userMs: c.user / 1000, sysMs: c.system / 1000, minflt };
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
