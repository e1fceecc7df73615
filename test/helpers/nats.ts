/**
 * `describe` for suites that need a real nats-server (and doveadm, as root):
 * skipped only when one is missing AND CI is unset; under CI a missing one
 * fails at collection time.
 */
import { afterAll, beforeAll, describe } from "vitest";
import { NatsCluster, natsServerPath } from "../../bench/replication/nats-cluster.js";
import { ReplicationConnection } from "../../src/replication/index.js";
import { createOracle, type DovecotOracle, type MailFormat } from "./dovecot.js";
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

/**
 * Inside a describeNats suite: a 3-node cluster started before its tests and
 * stopped (by PID) after them, and the oracles the tests push to `oracles`
 * cleaned up with it.
 */
export interface NatsSuite {
  readonly cluster: NatsCluster;
  readonly oracles: DovecotOracle[];
  /** New oracles of `formats`, cleaned up with the cluster. */
  newOracles(...formats: MailFormat[]): DovecotOracle[];
  /** Runs `fn` with a connection to the cluster, closed after it. */
  withConnection(fn: (conn: ReplicationConnection) => Promise<void>): Promise<void>;
}

export function useNatsCluster(): NatsSuite {
  let cluster: NatsCluster | undefined;
  const oracles: DovecotOracle[] = [];
  beforeAll(async () => {
    cluster = await NatsCluster.start(3);
  });
  afterAll(async () => {
    await cluster?.stop();
    for (const o of oracles) await o.cleanup();
  });
  return {
    get cluster(): NatsCluster {
      if (cluster === undefined) throw new Error("the NATS cluster starts in beforeAll: use it inside a test");
      return cluster;
    },
    oracles,
    newOracles(...formats: MailFormat[]): DovecotOracle[] {
      const made = formats.map((f) => createOracle(f));
      oracles.push(...made);
      return made;
    },
    async withConnection(fn: (conn: ReplicationConnection) => Promise<void>): Promise<void> {
      const conn = await ReplicationConnection.open({ servers: this.cluster.servers });
      try {
        await fn(conn);
      } finally {
        await conn.close();
      }
    },
  };
}
