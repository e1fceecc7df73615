import * as v8 from "node:v8";

/**
 * V8's heap sizing for a long import (issue #11, goal 5a: peak RSS ≤ 2×
 * doveadm's). An import's live data stays small (the open batch and the
 * index; about 15 MiB at 100,000 messages) but every batch promotes its
 * short-lived objects, and by default V8 then grows the young generation to
 * 2 × 16 MiB semi-spaces and lets the old one fill far past its live data
 * before collecting it (35 MiB of old space for 7 MiB live was seen): most
 * of the 115-130 MiB peak RSS of a 100k-message import.
 *
 * Both limits are V8 flags that V8 reads when it resizes, so setting them
 * after start-up works (Node's `--max-semi-space-size` is read once, at
 * start, and the launcher runs without flags): old space grows by
 * OLD_GROWING_PERCENT past what a full collection kept, and the young
 * generation stops growing once its semi-spaces reach YOUNG_SEMI_SPACE_BYTES
 * (V8 doubles them whenever scavenges have kept that much alive since the
 * last growth; a growth factor of 1 ends that).
 */
const OLD_GROWING_PERCENT = 100;
/**
 * 2 MiB (8 before): peak RSS of a 100k-message import 101.9–103.5 → 88.6–91.0
 * MiB, 20k 89–91 → 75–84 MiB, time unchanged (4.1–4.4 s; 3 runs each, the
 * twelfth session). doveadm's peak on the same mbox is 47.7–52.7 MiB.
 */
const YOUNG_SEMI_SPACE_BYTES = 2 * 1024 * 1024;
/** V8's defaults (heap-growing-percent 0: its own dynamic factor). */
const DEFAULT_FLAGS = "--heap-growing-percent=0 --semi-space-growth-factor=2";

/**
 * Bounds the heap until `restore()`; `check()`, called now and then (after
 * each committed batch), stops the young generation's growth at its bound.
 *
 * With `unindexedSource` (a source mailbox has no index yet, so the import
 * begins with its first sync), the young generation does not grow at all
 * until the first `check()`: the import syncs every source mailbox before
 * its first report, and the first sync of a 100k-message mbox grew it to
 * 16 MiB semi-spaces, which V8 kept for the whole import (96 against 106
 * MiB peak RSS). The first check lets it grow again, to its bound, as
 * before. Not for an indexed source: held at its start-up size until the
 * first report, the young generation left that import 5 MiB bigger (96
 * against 91 MiB), and held for the whole import it cost ~10% more CPU
 * (import9).
 */
export function boundImportHeap(opts: { unindexedSource?: boolean } = {}): { check(): void; restore(): void } {
  v8.setFlagsFromString(`--heap-growing-percent=${OLD_GROWING_PERCENT}`);
  let growing = !opts.unindexedSource;
  if (!growing) v8.setFlagsFromString("--semi-space-growth-factor=1");
  let capped = false;
  return {
    check() {
      if (capped) return;
      if (!growing) {
        v8.setFlagsFromString("--semi-space-growth-factor=2");
        growing = true;
      }
      const young = v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space");
      // new_space counts both semi-spaces.
      if (young !== undefined && young.space_size >= 2 * YOUNG_SEMI_SPACE_BYTES) {
        v8.setFlagsFromString("--semi-space-growth-factor=1");
        capped = true;
      }
    },
    restore() {
      v8.setFlagsFromString(DEFAULT_FLAGS);
    },
  };
}
