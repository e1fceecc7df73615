/**
 * A mailbox's change stream on any node, from the stream rather than a
 * local log: the shipped log bytes are folded by the same projection as
 * local change streams (advanceWithEffects → changeBatchFromEffects), so a
 * batch has the same shape, and the primary's positions and modseqs.
 *
 * The state behind the batches is folded from the subject's first message
 * (the primary's log from its start, or a seed of its state: seeded-state.ts),
 * so resuming from a position costs a read of the subject's history;
 * batches before `from` are folded but not delivered. Without `from`, delivery starts after the subject's last
 * message at subscription time (as a local `changes()` starts at the
 * mailbox's current position).
 */
import { Observable } from "rxjs/internal/Observable";
import { consumerOpts, type JetStreamSubscription } from "nats";
import { changeBatchFromEffects, type ChangeBatch } from "../api/changes.js";
import { decodeLogHeader } from "../log/header.js";
import { decodeLogSegment } from "../log/segments.js";
import type { LogFileHeader, LogPosition } from "../log/types.js";
import { advanceWithEffects } from "../projections/apply.js";
import { emptyIndexMap, type IndexMapState } from "../projections/state.js";
import { InvalidArgumentError } from "../shared/errors.js";
import type { ReplicationConnection } from "./connection.js";
import { SeedCollector } from "./seeded-state.js";
import { isStoreLevelSubject, mailboxSubject, storageSubjects } from "./subjects.js";
import { decodeCommit } from "./wire.js";

export interface RemoteChangesOptions {
  storageId: string;
  /** The mailbox's subject GUID (the primary's mailbox GUID); or `mailbox`, its name (then every subject of the storage is read). */
  mailboxGuid?: string;
  mailbox?: string;
  /** Deliver what came after this primary log position (a batch's `end`), then live. */
  from?: LogPosition;
}

export function remoteChanges(conn: ReplicationConnection, opts: RemoteChangesOptions): Observable<ChangeBatch> {
  if (opts.mailboxGuid === undefined && opts.mailbox === undefined) throw new InvalidArgumentError("remoteChanges: mailboxGuid or mailbox is required");
  const subject = opts.mailboxGuid !== undefined ? mailboxSubject(conn.names, opts.storageId, opts.mailboxGuid) : storageSubjects(conn.names, opts.storageId);
  return new Observable<ChangeBatch>((subscriber) => {
    let sub: JetStreamSubscription | undefined;
    let stopped = false;
    void (async () => {
      // Live-only: what the subject holds now is history.
      // Asked of the stream's leader (stream info may come from a member behind it, during an election).
      const liveAfter = opts.from === undefined ? await conn.lastSequence(subject, Date.now() + conn.timeoutMs) : 0;
      const co = consumerOpts();
      co.orderedConsumer();
      co.deliverAll();
      sub = await conn.js.subscribe(subject, co);
      if (stopped) {
        sub.unsubscribe();
        return;
      }
      let state: IndexMapState | undefined;
      const seeds = new SeedCollector();
      for await (const m of sub) {
        // Purges, altmoves and subscriptions change no mailbox's log (subjects of their own, under the same filter).
        if (isStoreLevelSubject(m.subject)) continue;
        const c = decodeCommit(m.data, m.subject, m.seq);
        if (opts.mailbox !== undefined && c.mailbox !== opts.mailbox) continue;
        // A seed has no log bytes: the commits after it fold onto the state it describes (no batches of its own).
        if (c.seed) {
          state = seeds.add(c) ?? state;
          continue;
        }
        for (const seg of c.segments) {
          const header: LogFileHeader = decodeLogHeader(seg.headerBytes, m.subject);
          state ??= emptyIndexMap({ indexId: header.indexId });
          const step = advanceWithEffects(state, decodeLogSegment(seg, m.subject), [header]);
          state = step.state;
          for (const fx of step.effects) {
            if (m.seq <= liveAfter) continue;
            if (opts.from !== undefined && isBefore(fx.position, opts.from)) continue;
            subscriber.next(changeBatchFromEffects(fx));
          }
        }
      }
      subscriber.complete();
    })().catch((err: unknown) => subscriber.error(err));
    return () => {
      stopped = true;
      sub?.unsubscribe();
    };
  });
}

function isBefore(a: LogPosition, b: LogPosition): boolean {
  return a.fileSeq < b.fileSeq || (a.fileSeq === b.fileSeq && a.offset < b.offset);
}
