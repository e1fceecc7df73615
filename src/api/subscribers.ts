import type { Subscriber } from "rxjs/internal/Subscriber";
import type { ChangeBatch } from "./changes.js";
import { MailstoreError } from "../shared/errors.js";
import type { LogPosition } from "../log/types.js";

/** A change-stream subscriber fell too far behind; resubscribe with `changes(resumeFrom)`. */
export class SubscriberOverflowError extends MailstoreError {
  readonly resumeFrom: LogPosition;
  constructor(resumeFrom: LogPosition, max: number) {
    super("SUBSCRIBER_OVERFLOW", `change subscriber fell more than ${max} batches behind; resume from ${resumeFrom.fileSeq}:${resumeFrom.offset}`);
    this.resumeFrom = resumeFrom;
  }
}

interface Member {
  subscriber: Subscriber<ChangeBatch>;
  /** Batches that start before this were already delivered (or predate the subscription). */
  from: LogPosition;
}

/**
 * Fans a mailbox's change batches out to its subscribers. Publishing only
 * queues the batch and schedules one drain on the next turn of the event
 * loop, so a commit costs the same whatever the number of subscribers and
 * never runs subscriber code. A drain that would hand more than `max`
 * batches to a subscriber cuts it off with SubscriberOverflowError, whose
 * `resumeFrom` is where it can subscribe again: buffering stays bounded.
 */
export class ChangeFanout {
  private readonly members = new Set<Member>();
  private pending: ChangeBatch[] = [];
  private scheduled = false;

  constructor(private readonly max: number) {}

  get size(): number {
    return this.members.size;
  }

  /** Adds a subscriber that gets every published batch starting at or after `from`. */
  join(subscriber: Subscriber<ChangeBatch>, from: LogPosition): () => void {
    const member = { subscriber, from };
    this.members.add(member);
    return () => this.members.delete(member);
  }

  publish(batch: ChangeBatch): void {
    if (this.members.size === 0) return;
    this.pending.push(batch);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  /** Ends every subscription with `err`. */
  fail(err: unknown): void {
    for (const m of this.members) m.subscriber.error(err);
    this.members.clear();
  }

  complete(): void {
    for (const m of this.members) m.subscriber.complete();
    this.members.clear();
  }

  private drain(): void {
    this.scheduled = false;
    const batches = this.pending;
    this.pending = [];
    for (const m of this.members) {
      const first = batches.findIndex((b) => !isBefore(b.position, m.from));
      if (first < 0) continue;
      if (batches.length - first > this.max) {
        this.members.delete(m);
        m.subscriber.error(new SubscriberOverflowError(batches[first].position, this.max));
        continue;
      }
      for (let i = first; i < batches.length && !m.subscriber.closed; i++) m.subscriber.next(batches[i]);
      m.from = batches[batches.length - 1].end;
    }
  }
}

function isBefore(a: LogPosition, b: LogPosition): boolean {
  return a.fileSeq < b.fileSeq || (a.fileSeq === b.fileSeq && a.offset < b.offset);
}
