/**
 * A connection to a JetStream cluster with the mailstore stream in place:
 * one stream for every replicated storage (subjects `<prefix>.>`), file
 * storage, replicated ×3 by default, so a commit JetStream acknowledged is
 * on a majority of the nodes' disks.
 */
import { AckPolicy, connect, DeliverPolicy, ErrorCode, NatsError, nanos, type JetStreamClient, type JetStreamManager, type NatsConnection } from "nats";
import { CLUSTER_NOT_AVAILABLE, whileSettling } from "./settling.js";
import { ReplicationError } from "../shared/errors.js";
import { BodyStore } from "./bodies.js";
import { DEFAULT_NAMES, type StreamNames } from "./subjects.js";

export interface ReplicationConnectOptions {
  /** `nats://host:port`, one or several (every node of the cluster is best). */
  servers: string | string[];
  names?: Partial<StreamNames>;
  /** How long a JetStream request may take (default 10 s: a leader election takes a few). */
  timeoutMs?: number;
}

export class ReplicationConnection {
  readonly names: StreamNames;
  readonly bodies: BodyStore;
  private constructor(readonly nc: NatsConnection, readonly js: JetStreamClient, readonly jsm: JetStreamManager, names: StreamNames, readonly timeoutMs: number) {
    this.names = names;
    this.bodies = new BodyStore(js, names);
  }

  /**
   * Connects and makes sure the stream exists.
   * @throws ReplicationError when no server answers or the stream cannot be created.
   */
  static async open(opts: ReplicationConnectOptions): Promise<ReplicationConnection> {
    const names = { ...DEFAULT_NAMES, ...opts.names };
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const servers = Array.isArray(opts.servers) ? opts.servers : opts.servers.split(",");
    let nc: NatsConnection;
    try {
      nc = await connect({ servers, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: timeoutMs });
    } catch (err) {
      throw asReplicationError(err, `cannot connect to ${servers.join(",")}`);
    }
    try {
      const jsm = await nc.jetstreamManager({ timeout: timeoutMs });
      // A stream whose nodes just came back may take a few seconds to elect a leader, and a
      // cluster just formed (or a peer lagging under load) may not offer 3 peers for a new one yet.
      await whileSettling(Date.now() + 3 * timeoutMs, () => ensureStream(jsm, names));
      return new ReplicationConnection(nc, nc.jetstream({ timeout: timeoutMs }), jsm, names, timeoutMs);
    } catch (err) {
      await nc.close();
      throw asReplicationError(err, `stream ${names.stream}`);
    }
  }

  /**
   * Stream sequence of the last message on `filter` (wildcards allowed) as
   * the stream's leader has it; 0 when there is none. Asked with
   * `$JS.API.STREAM.MSG.GET`, which only the leader answers (a member of a
   * group without a leader answers 503); STREAM.INFO would not do: during an
   * election any member answers it from its own store, possibly behind.
   * Asked again during an election, until `deadline` (epoch ms).
   * @throws ReplicationError when no leader answers by `deadline`.
   */
  async lastSequence(filter: string, deadline: number): Promise<number> {
    for (;;) {
      const timeout = Math.max(1, Math.min(this.timeoutMs, deadline - Date.now()));
      try {
        const api = await this.nc.jetstreamManager({ timeout, checkAPI: false });
        return (await api.streams.getMessage(this.names.stream, { last_by_subj: filter })).seq;
      } catch (err) {
        if (!(err instanceof NatsError)) throw err;
        if (err.api_error?.err_code === NO_MESSAGE) return 0;
        const election = err.api_error?.err_code === CLUSTER_NOT_AVAILABLE || err.code === ErrorCode.Timeout || err.code === ErrorCode.NoResponders;
        if (!election || Date.now() >= deadline) throw asReplicationError(err, `last message of ${filter} in ${this.names.stream}`);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(100, Math.max(0, deadline - Date.now()))));
    }
  }

  /**
   * How many messages on `filter` the stream has after sequence `seq`,
   * counted by the server: a pull consumer starting at `seq + 1` is created
   * (its info gives the count, num_pending) and deleted: whatever a
   * subscription's client holds, and whichever consumer it has now (an
   * ordered consumer is made again after a gap). Counted by the node the
   * consumer is placed on, which may be behind the leader for a while after
   * it was down (ReplicationConnection.lastSequence is the leader's); and
   * nats-server 2.9 sometimes counts too few for a wildcard filter on a new
   * consumer (6 of 10 in 7 of 60 tries, on the leader too): a fallback, not
   * the exact count Replica.lag() makes from delivery sequences.
   * Asked again while the cluster settles (an election), until `deadline` (epoch ms).
   * @throws ReplicationError when JetStream does not answer by then.
   */
  async countAfter(filter: string, seq: number, deadline: number): Promise<number> {
    let info;
    try {
      info = await whileSettling(deadline, () => this.jsm.consumers.add(this.names.stream, {
        filter_subject: filter, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: seq + 1, ack_policy: AckPolicy.None,
        // Gone by itself if the delete below never reaches the server.
        inactive_threshold: nanos(60_000), mem_storage: true,
      }));
    } catch (err) {
      throw asReplicationError(err, `count of ${filter} after stream sequence ${seq}`);
    }
    try {
      await this.jsm.consumers.delete(this.names.stream, info.name);
    } catch (err) {
      // Counted already; the consumer expires (inactive_threshold) if the delete was lost.
      if (!(err instanceof NatsError)) throw err;
    }
    return info.num_pending;
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.drain();
  }
}

/** JetStream's "no message found". */
const NO_MESSAGE = 10037;


async function ensureStream(jsm: JetStreamManager, names: StreamNames): Promise<void> {
  try {
    await jsm.streams.info(names.stream);
    return;
  } catch (err) {
    if (!(err instanceof NatsError) || err.api_error?.err_code !== 10059) throw err; // 10059: stream not found
  }
  await jsm.streams.add({ name: names.stream, subjects: [`${names.subjectPrefix}.>`], num_replicas: names.replicas, duplicate_window: 120_000_000_000 });
}

/** A NatsError (or anything) as a ReplicationError naming `what`; ReplicationErrors pass through. */
export function asReplicationError(err: unknown, what: string): Error {
  if (err instanceof ReplicationError) return err;
  if (err instanceof NatsError) return new ReplicationError(`${what}: ${err.message}${err.api_error ? ` (JetStream error ${err.api_error.err_code})` : ""}`);
  return err as Error;
}
