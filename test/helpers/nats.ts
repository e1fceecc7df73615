/**
 * `describe` for suites that need a real nats-server (and doveadm, as root):
 * skipped only when one is missing AND CI is unset; under CI a missing one
 * fails at collection time.
 */
import { describe } from "vitest";
import { natsServerPath } from "../../bench/replication/nats-cluster.js";
import { interopAvailable, haveDoveadm } from "./dovecot-oracle.js";

export const haveNatsServer = natsServerPath() !== undefined;

export function describeNats(name: string, fn: () => void, opts: { doveadm?: boolean } = {}): void {
  const missing = !haveNatsServer ? "nats-server is not installed" : opts.doveadm && !interopAvailable ? (haveDoveadm ? "not root" : "doveadm is not installed") : undefined;
  if (missing === undefined) {
    describe(name, fn);
    return;
  }
  if (process.env.CI) throw new Error(`suite "${name}" cannot run: ${missing}, and CI is set`);
  describe.skip(`${name} (skipped: ${missing})`, fn);
}
