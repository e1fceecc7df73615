/**
 * Asking JetStream again while a cluster settles: a stream's group without a
 * leader (an election), a cluster just formed, or a peer lagging under load
 * that drops out of placement for a moment all answer with errors that pass.
 */
import { ErrorCode, NatsError } from "nats";

/** JetStream's "system temporarily unavailable": the stream's group has no leader (an election). */
export const CLUSTER_NOT_AVAILABLE = 10008;
/** JetStream's "no suitable peers for placement": fewer current peers than replicas, for now. */
export const NO_PLACEMENT = 10005;

/** @returns true for the errors a settling cluster gives (see the module comment). */
export function isSettlingError(err: unknown): err is NatsError {
  if (!(err instanceof NatsError)) return false;
  const code = err.api_error?.err_code;
  return err.code === ErrorCode.Timeout || code === CLUSTER_NOT_AVAILABLE || code === NO_PLACEMENT;
}

/** Runs `fn` until it succeeds, again every 100 ms while it fails with a settling error, until `deadline` (epoch ms). */
export async function whileSettling<T>(deadline: number, fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!isSettlingError(err) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
