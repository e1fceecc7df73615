import { SingleBar, Presets } from "cli-progress";

/** Where a campaign reports progress; the CI test passes a silent one. */
export interface Progress {
  start(total: number, label: string): void;
  /** One more unit done; `status` is a short running summary. */
  tick(status: string): void;
  stop(): void;
}

/** Says nothing (tests). */
export const silentProgress: Progress = { start() {}, tick() {}, stop() {} };

/**
 * A progress bar on stderr when it is a terminal, otherwise a line every
 * 10 seconds (logs of long runs stay readable).
 */
export function consoleProgress(): Progress {
  if (process.stderr.isTTY) {
    const bar = new SingleBar({ format: "{label} [{bar}] {value}/{total} {status}", stream: process.stderr }, Presets.shades_classic);
    return {
      start: (total, label) => bar.start(total, 0, { label, status: "" }),
      tick: (status) => bar.increment(1, { status }),
      stop: () => bar.stop(),
    };
  }
  let done = 0;
  let total = 0;
  let label = "";
  let lastMs = 0;
  return {
    start(t, l) {
      total = t;
      label = l;
      done = 0;
      lastMs = Date.now();
      process.stderr.write(`${label}: 0/${total}\n`);
    },
    tick(status) {
      done++;
      if (Date.now() - lastMs >= 10_000 || done === total) {
        lastMs = Date.now();
        process.stderr.write(`${label}: ${done}/${total} ${status}\n`);
      }
    },
    stop() {},
  };
}
