/**
 * Gates in front of a connection's real JetStream calls (no mock: the call
 * is made, later): a test holds one where a lock's holder would wait, and
 * checks what others can do meanwhile.
 */
import type { JetStreamManager, StreamAPI } from "nats";
import type { ReplicationConnection } from "../../src/replication/index.js";

/** How long work that needs no held call may take while one is held (a lock wait would take until the gate opens). */
export const MEANWHILE_DEADLINE_MS = 10_000;

export interface Gate {
  /** Resolves when the first held call is waiting. */
  held: Promise<void>;
  release(): void;
}

export interface GateOptions {
  /** Hold the call's answer, after the call was made (default: hold the call before it is made). */
  after?: boolean;
}

/** Runs `call` through `gate` (see GateOptions.after). */
async function through<T>(gate: ReturnType<typeof newGate>, { after = false }: GateOptions, call: () => Promise<T>): Promise<T> {
  if (!after) {
    gate.enter();
    await gate.released;
    return call();
  }
  const answer = await call();
  gate.enter();
  await gate.released;
  return answer;
}

function newGate(): Gate & { enter(): void; released: Promise<void> } {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let enter!: () => void;
  const held = new Promise<void>((resolve) => (enter = resolve));
  return { held, release, enter, released };
}

/**
 * Holds every JetStream publish of `conn` from now on (`onlyFirst`: the
 * first one; the others go through) until `release()`.
 */
export function gatePublishes(conn: ReplicationConnection, { onlyFirst = false, ...opts }: GateOptions & { onlyFirst?: boolean } = {}): Gate {
  const js = conn.js;
  const gate = newGate();
  let first = true;
  const publish: typeof js.publish = async (...args) => {
    if (!first && onlyFirst) return js.publish(...args);
    first = false;
    return through(gate, opts, () => js.publish(...args));
  };
  Object.defineProperty(conn, "js", { value: Object.assign(Object.create(js) as typeof js, { publish }), configurable: true });
  return { held: gate.held, release: gate.release };
}

/**
 * Holds the first lookup of `subject`'s last message (a fencing check's
 * round trip) through `conn`'s manager from now on, until `release()`; the
 * others go through.
 */
export function gateLastLookup(conn: ReplicationConnection, subject: string, opts: GateOptions = {}): Gate {
  const jsm = conn.jsm;
  const streams = jsm.streams;
  const gate = newGate();
  let first = true;
  const getMessage: StreamAPI["getMessage"] = async (stream, query) => {
    if (!first || typeof query !== "object" || !("last_by_subj" in query) || query.last_by_subj !== subject) return streams.getMessage(stream, query);
    first = false;
    return through(gate, opts, () => streams.getMessage(stream, query));
  };
  const gated = Object.assign(Object.create(jsm) as JetStreamManager, { streams: Object.assign(Object.create(streams) as StreamAPI, { getMessage }) });
  Object.defineProperty(conn, "jsm", { value: gated, configurable: true });
  return { held: gate.held, release: gate.release };
}

/** `work` finishes within MEANWHILE_DEADLINE_MS, or the test fails naming `what` (it waited for a lock the held call kept). */
export async function finishesMeanwhile<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${MEANWHILE_DEADLINE_MS} ms while a JetStream call was held`)), MEANWHILE_DEADLINE_MS);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
    // On failure the work goes on once the call is let through: not left running past the test.
    void work.catch(() => undefined);
  }
}
