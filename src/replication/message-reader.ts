/**
 * A subscription's messages one at a time, and, without waiting, the ones
 * queued behind: how a replica finds a backlog to apply in runs.
 */
import type { JetStreamSubscription, JsMsg } from "nats";

export class MessageReader {
  private readonly it: AsyncIterator<JsMsg>;
  /** A next() asked for by queued() that had not resolved yet (it is the next message, whenever it comes). */
  private ahead: Promise<IteratorResult<JsMsg>> | undefined;
  private putBackMsg: JsMsg | undefined;

  constructor(sub: JetStreamSubscription) {
    this.it = sub[Symbol.asyncIterator]();
  }

  /** The next message, waiting for it; undefined once the subscription ended. */
  async next(): Promise<JsMsg | undefined> {
    const back = this.putBackMsg;
    if (back !== undefined) {
      this.putBackMsg = undefined;
      return back;
    }
    const asked = this.ahead ?? this.it.next();
    this.ahead = undefined;
    const r = await asked;
    return r.done ? undefined : r.value;
  }

  /**
   * The next message if the client has it queued already; undefined when
   * it has not (that message is next()'s, later: nothing is lost).
   */
  async queued(): Promise<JsMsg | undefined> {
    if (this.putBackMsg !== undefined) return undefined;
    const asked = this.ahead ?? this.it.next();
    // A queued message comes within microtasks, before the next turn of the event loop; a next() that waits longer is kept for next().
    // (The subscription's getPending() does not count what its iterator holds.)
    const got = await Promise.race([asked, new Promise<undefined>((resolve) => setImmediate(() => resolve(undefined)))]);
    if (got === undefined || got.done) {
      this.ahead = asked;
      return undefined;
    }
    this.ahead = undefined;
    return got.value;
  }

  /** `m`, from queued(), is next()'s again. */
  putBack(m: JsMsg): void {
    this.putBackMsg = m;
  }
}
