/**
 * The doveadm oracle (dovecot-oracle.ts) plus `describeInterop`, the one
 * piece that needs vitest.
 */
import { describe } from "vitest";
import { haveDoveadm, interopAvailable, requireInterop } from "./dovecot-oracle.js";

export * from "./dovecot-oracle.js";

/**
 * `describe` for interop suites: runs when doveadm is available (and we are root),
 * `describe.skip` otherwise — except when CI is set, where it throws at collection
 * time so the missing oracle fails the run instead of silently skipping.
 */
export function describeInterop(name: string, fn: () => void): void {
  if (interopAvailable) {
    describe(name, fn);
    return;
  }
  const why = !haveDoveadm ? "doveadm is not installed" : "tests are not running as root (doveadm must drop to uid 65534)";
  if (requireInterop) {
    throw new Error(`Interop suite "${name}" cannot run: ${why}, and CI is set (interop tests are mandatory in CI)`);
  }
  describe.skip(`${name} (skipped: ${why})`, fn);
}
