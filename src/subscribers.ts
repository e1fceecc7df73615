import type { Subscriber } from "rxjs";
import type { ChangeBatch } from "./changes.js";
import { MailstoreError } from "./errors.js";
import type { LogPosition } from "./log/types.js";

/** A change-stream subscriber fell too far behind; resubscribe with `changes(resumeFrom)`. */
export class SubscriberOverflowError extends MailstoreError {
  readonly resumeFrom: LogPosition;
  constructor(resumeFrom: LogPosition, max: number) {
    super("INVALID_ARGUMENT", `change subscriber fell more than ${max} batches behind; resume from ${resumeFrom.fileSeq}:${resumeFrom.offset}`);
    this.resumeFrom = resumeFrom;
  }
}

/**
 * Delivers batches to one subscriber through a bounded queue drained on the
 * next turn of the event loop, so a committer never runs subscriber code
 * and a subscriber that cannot keep up is cut off (with where to resume)
 * instead of growing memory without bound.
 */
export function boundedDelivery(subscriber: Subscriber<ChangeBatch>, max: number): (batch: ChangeBatch) => void {
  const queue: ChangeBatch[] = [];
  let scheduled = false;
  let failed = false;
  const drain = () => {
    scheduled = false;
    const batches = queue.splice(0, queue.length);
    for (const batch of batches) {
      if (subscriber.closed) return;
      subscriber.next(batch);
    }
  };
  return (batch) => {
    if (failed || subscriber.closed) return;
    if (queue.length >= max) {
      failed = true;
      const resumeFrom = queue[0].position;
      queue.length = 0;
      subscriber.error(new SubscriberOverflowError(resumeFrom, max));
      return;
    }
    queue.push(batch);
    if (!scheduled) {
      scheduled = true;
      setImmediate(drain);
    }
  };
}
