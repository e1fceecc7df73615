/**
 * A replica: applies a storage's stream (every mailbox subject of one
 * storage id) to a store of its own, in any format, from an ordered push
 * consumer (`js.subscribe`; nats-server 2.9 hangs on the newer
 * `consumers.get` with filter subjects). It remembers the last stream
 * sequence it applied (position-file.ts), starts after it when restarted,
 * and reports its lag: messages in the stream it has not applied.
 *
 * The consumer may sit on a node that is behind the stream's leader (one
 * restarted after a crash catches up for a few seconds): it delivers in
 * order, only later, and counts no more than its node holds. "Caught up"
 * is therefore measured against the leader's last message of the storage
 * (ReplicationConnection.lastSequence), never against the consumer's count.
 */
import { consumerOpts, ErrorCode, NatsError, type JetStreamSubscription, type JsMsg } from "nats";
import type { Mailbox } from "../api/mailbox.js";
import type { Storage } from "../api/storage.js";
import { ReplicationError } from "../shared/errors.js";
import { applyCreate, applySeed, applyShippedRun, applyTreeOp, replicaMailbox, type ApplyResult } from "./apply.js";
import { asReplicationError, type ReplicationConnection } from "./connection.js";
import { whileSettling } from "./settling.js";
import { readPosition, writePosition } from "./position-file.js";
import { storageSubjects, checkToken, isStorageSubject, isSubscriptionsSubject, subscriptionsSubject } from "./subjects.js";
import { decodeCommit, decodeStorageEvent, type ShippedCommit } from "./wire.js";
import { MessageReader } from "./message-reader.js";
import { Publisher, takeOver, takeOverStorage } from "./publisher.js";
import { applyStorageEvent, type StorageEventResult } from "./storage-events.js";
import type { ReplicaPosition } from "./position-file.js";

/**
 * Makes a store that was a replica of `storageId` a primary: for every
 * mailbox in `position.mailboxes`, publishes a takeover message expecting
 * the subject's last message the replica applied (takeOver), so the old
 * primary is fenced at its next commit, and returns the Publisher that
 * carries on those subjects. Stop the replica first.
 * @throws ReplicationFencedError when the stream has messages the replica has not applied.
 */
export async function promoteStore(conn: ReplicationConnection, storage: Storage, position: ReplicaPosition): Promise<Publisher> {
  const publisher = new Publisher(conn, position.storageId, new Map(Object.entries(position.mailboxes)));
  for (const [name, guid] of Object.entries(position.mailboxes)) {
    const box = await storage.openMailbox(name);
    try {
      await takeOver(publisher, box, guid, position.appliedSeqs[name] ?? 0);
    } finally {
      await box.close();
    }
  }
  // The storage subject too, once it has events: the old primary's next purge or altmove is fenced, whatever this store's
  // format (a Maildir or mbox store publishes none itself, but its INBOX's GUID names it as the subject's writer).
  if ((position.storageSeq ?? 0) > 0) await takeOverStorage(publisher, storage, position.storageSeq!);
  // The subscriptions subject, once it has lists: the old primary's next (un)subscribe is fenced (any format: it needs the INBOX's GUID, which a replica's INBOX has once it got a commit).
  if ((position.subscriptionsSeq ?? 0) > 0) await takeOverStorage(publisher, storage, position.subscriptionsSeq!, subscriptionsSubject(conn.names, position.storageId));
  return publisher;
}

/** A Publisher for a promoted store (a later process): its subjects as its position file keeps them. */
export function promotedPublisher(conn: ReplicationConnection, positionFile: string, storageId: string): Publisher {
  const p = readPosition(positionFile);
  return new Publisher(conn, storageId, new Map(Object.entries(p?.storageId === storageId ? p.mailboxes : {})));
}

export interface ReplicaOptions {
  /** The primary's storage id (the second subject token). */
  storageId: string;
  /** Where the replica keeps its stream position. */
  positionFile: string;
  /** Told after each applied stream message (for progress output; the library does not print). */
  onApplied?: (info: { streamSeq: number; mailbox: string; result: ApplyResult; lag: number; storageEvent?: { type: string } & StorageEventResult }) => void;
}

export interface ReplicaStatus {
  /** Last stream sequence applied. */
  appliedSeq: number;
  /**
   * Stream messages of this storage not applied yet, estimated without a
   * round trip: the pending count the server sent with the last message
   * the replica took, plus the messages it is applying (a test saw 8 for
   * 10). lag() is exact.
   */
  lag: number;
  /** Transactions written to the replica since start, and left out (already there, or nothing to repeat). */
  appliedTransactions: number;
  skippedTransactions: number;
  /**
   * Storage events (purge, altmove, subscriptions lists) repeated on this
   * store, and left out: a format without purge or ALT storage, a mailbox
   * not here, a takeover, a list this store has already or one a later
   * list replaces.
   */
  appliedStorageEvents: number;
  skippedStorageEvents: number;
  /** mdbox map log ranges received with commits and events: information only (the replica's map is its own). */
  mapLogRanges: number;
  /** The error that stopped the replica, if one did. */
  error: Error | undefined;
}

/** A replica applies at most this many queued commits of a mailbox together (runFrom)… */
const RUN_MESSAGES = 256;
/** … and stops adding to them past this many bytes of messages (their bodies are in memory until applied). */
const RUN_BYTES = 8 << 20;

/** A stream message of a mailbox subject, decoded. */
interface ShippedMessage {
  m: JsMsg;
  c: ShippedCommit;
}

/** Runs `fn` again (up to `tries` times) when JetStream does not answer in time: a leader election after a node died. */
async function retryTimeouts<T>(fn: () => Promise<T>, tries: number): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof NatsError) || err.code !== ErrorCode.Timeout || i >= tries) throw err;
    }
  }
}

export class Replica {
  private sub: JetStreamSubscription | undefined;
  private loop: Promise<void> | undefined;
  private appliedSeq: number;
  private pending = 0;
  private inFlight = 0;
  private appliedTx = 0;
  private skippedTx = 0;
  private appliedEvents = 0;
  private skippedEvents = 0;
  private mapRanges = 0;
  /** The last storage-subject sequence applied: what a promotion expects of it. */
  private storageSeq: number;
  /** The same for the subscriptions subject. */
  private subscriptionsSeq: number;
  /** The subscriptions subject's last sequence, looked up at its first message of this run (subscriptionsSuperseded). */
  private latestSubscriptionsSeq: number | undefined;
  /** The consumer and delivery sequence of the last message applied (seq 0: none of that consumer's yet), for lag(). */
  private appliedDelivery: { consumer: string; seq: number } | undefined;
  private failure: Error | undefined;
  private stopping = false;
  private readonly open = new Map<string, Mailbox>();
  private waiters: Array<() => void> = [];
  private lastSave = 0;
  /** Primary mailbox GUIDs by name (position-file.ts). */
  private readonly mailboxes: Record<string, string>;
  /** The last stream sequence applied per mailbox: what a promotion expects of each subject. */
  private readonly appliedSeqs: Record<string, number>;
  /** Per subject seen in this run: the sequence of its last message when that is a delete, else 0. */
  private readonly deletedAt = new Map<string, number>();

  private constructor(private readonly conn: ReplicationConnection, readonly storage: Storage, private readonly options: ReplicaOptions) {
    checkToken("storage id", options.storageId);
    const stored = readPosition(options.positionFile);
    if (stored && (stored.stream !== conn.names.stream || stored.storageId !== options.storageId)) {
      throw new ReplicationError(`position is for ${stored.stream}/${stored.storageId}, not ${conn.names.stream}/${options.storageId}`, { path: options.positionFile });
    }
    this.appliedSeq = stored?.streamSeq ?? 0;
    this.mailboxes = { ...stored?.mailboxes };
    this.appliedSeqs = { ...stored?.appliedSeqs };
    this.storageSeq = stored?.storageSeq ?? 0;
    this.subscriptionsSeq = stored?.subscriptionsSeq ?? 0;
  }

  /** Starts applying from the stored position (or the stream's start). */
  static async start(conn: ReplicationConnection, storage: Storage, options: ReplicaOptions): Promise<Replica> {
    const r = new Replica(conn, storage, options);
    const opts = consumerOpts();
    opts.orderedConsumer();
    if (r.appliedSeq > 0) opts.startSequence(r.appliedSeq + 1);
    else opts.deliverAll();
    r.sub = await retryTimeouts(() => conn.js.subscribe(storageSubjects(conn.names, options.storageId), opts), 3);
    const info = await retryTimeouts(() => r.sub!.consumerInfo(), 3);
    r.pending = info.num_pending;
    r.appliedDelivery = { consumer: info.name, seq: 0 };
    r.loop = r.run(r.sub);
    return r;
  }

  private async run(sub: JetStreamSubscription): Promise<void> {
    const reader = new MessageReader(sub);
    try {
      for (let m = await reader.next(); m !== undefined; m = await reader.next()) {
        this.inFlight = 1;
        this.pending = m.info.pending;
        const c = isStorageSubject(m.subject) || isSubscriptionsSubject(m.subject) ? undefined : decodeCommit(m.data, m.subject, m.seq);
        if (c === undefined) await this.applyStorageMessage(m);
        else if (c.op || c.seed) await this.applyMessage(m, c);
        else await this.applyCommits(await this.runFrom(reader, { m, c }));
        this.inFlight = 0;
        this.wake();
      }
      // The subscription ended without stop(): the connection closed.
      if (!this.stopping) this.failure = new ReplicationError(`the replica's subscription to ${this.options.storageId} ended`, { path: this.options.positionFile });
    } catch (err) {
      this.failure = err as Error;
      // Nothing reads the subscription any more (a `for await` left by a throw would end it too).
      sub.unsubscribe();
    } finally {
      this.savePosition(true);
      this.wake();
    }
  }

  /**
   * `first` (a commit: no op, no seed) and the same mailbox's commits queued
   * behind it (a backlog), up to RUN_MESSAGES or RUN_BYTES: applied
   * together (applyCommits). The first message that does not join is
   * next()'s again.
   */
  private async runFrom(reader: MessageReader, first: ShippedMessage): Promise<ShippedMessage[]> {
    const run = [first];
    let bytes = first.m.data.length;
    while (run.length < RUN_MESSAGES && bytes < RUN_BYTES) {
      const m = await reader.queued();
      if (m === undefined) break;
      const c = m.subject === first.m.subject ? decodeCommit(m.data, m.subject, m.seq) : undefined;
      if (c === undefined || c.op || c.seed || c.mailbox !== first.c.mailbox || c.uidValidity !== first.c.uidValidity) {
        reader.putBack(m);
        break;
      }
      run.push({ m, c });
      bytes += m.data.length;
      this.inFlight = run.length;
      this.pending = m.info.pending;
    }
    return run;
  }

  /** Commits of one mailbox, consecutive in the stream (runFrom): their transactions in as few replica commits as keep each one's modseq (applyShippedRun). */
  private async applyCommits(run: readonly ShippedMessage[]): Promise<void> {
    const { m, c } = run[0];
    const last = run[run.length - 1].m;
    for (const r of run) this.mapRanges += r.c.mapLog?.length ?? 0;
    const box = await this.liveMailbox(m, c);
    // Recorded as each commit lands, not before: a run that fails partway leaves the sequence of what reached the log (promote's takeover expects it).
    const landed = (n: number) => {
      this.appliedSeqs[c.mailbox] = run[n - 1].m.seq;
    };
    const result = box === undefined ? { applied: 0, skipped: run.length } : await applyShippedRun(box, run.map((r) => r.c), this.conn.bodies, m.subject, landed);
    this.appliedTx += result.applied;
    this.skippedTx += result.skipped;
    this.applied(last, false, { streamSeq: last.seq, mailbox: c.mailbox, result, lag: last.info.pending });
  }

  /**
   * The replica's mailbox for commit or seed part `c` (message `m`), open
   * (its applied sequence is the caller's to record, once applied);
   * undefined when the mailbox ends
   * deleted (its commits are not applied again, whether this replica
   * applied the delete already or not), or lives on here under a later
   * name (replicaMailbox).
   */
  private async liveMailbox(m: JsMsg, c: ShippedCommit): Promise<Mailbox | undefined> {
    if (await this.deletedLater(m.subject, m.seq)) return undefined;
    const box = await replicaMailbox(this.storage, this.open, c, this.mailboxes);
    if (box === undefined) return undefined;
    this.mailboxes[c.mailbox] = c.mailboxGuid;
    return box;
  }

  /** A create, rename, delete or seed part of a mailbox. */
  private async applyMessage(m: JsMsg, c: ShippedCommit): Promise<void> {
    this.mapRanges += c.mapLog?.length ?? 0;
    let result: ApplyResult;
    if (c.op?.type === "create" && !(await this.deletedLater(m.subject, m.seq))) {
      // The mailbox's first message: created here with the primary's UIDVALIDITY (nothing, when it is here already).
      const created = await applyCreate(this.storage, this.open, c, this.mailboxes);
      result = created.result;
      if (created.box !== undefined) {
        this.mailboxes[c.mailbox] = c.mailboxGuid;
        this.appliedSeqs[c.mailbox] = m.seq;
      }
    } else if (c.op?.type === "create") {
      // The mailbox ends deleted: it is not created (again).
      result = { applied: 0, skipped: 1 };
    } else if (c.op) {
      // A rename or delete, in order with the mailbox's commits (its own subject).
      result = await applyTreeOp(this.storage, this.open, c, m.subject);
      this.mailboxMoved(c.op.type === "rename" ? c.op.from : c.mailbox, c.op.type === "rename" ? c.mailbox : undefined);
      if (c.op.type === "rename") {
        this.mailboxes[c.mailbox] = c.mailboxGuid;
        this.appliedSeqs[c.mailbox] = m.seq;
      }
    } else {
      const box = await this.liveMailbox(m, c);
      result = box === undefined ? { applied: 0, skipped: 1 } : await applySeed(box, c, this.conn.bodies, m.subject);
      if (box !== undefined) this.appliedSeqs[c.mailbox] = m.seq;
    }
    this.appliedTx += result.applied;
    this.skippedTx += result.skipped;
    this.applied(m, c.op !== undefined, { streamSeq: m.seq, mailbox: c.mailbox, result, lag: m.info.pending });
  }

  /**
   * A purge or altmove of the primary (storage-events.ts), in stream order
   * with the mailbox commits around it; or a subscriptions list, unless a
   * later one is in the stream already.
   */
  private async applyStorageMessage(m: JsMsg): Promise<void> {
    const e = decodeStorageEvent(m.data, m.subject, m.seq);
    this.mapRanges += e.mapLog.length;
    const subscriptions = isSubscriptionsSubject(m.subject);
    const done = subscriptions && (await this.subscriptionsSuperseded(m.subject, m.seq))
      ? { applied: false as const, reason: "a later subscriptions list is in the stream" }
      : await applyStorageEvent(this.storage, this.open, e, this.mailboxes);
    if (done.applied) this.appliedEvents++;
    else this.skippedEvents++;
    if (subscriptions) this.subscriptionsSeq = m.seq;
    else this.storageSeq = m.seq;
    this.applied(m, true, {
      streamSeq: m.seq, mailbox: e.op.type === "altmove" ? e.op.mailbox : "", result: { applied: 0, skipped: 0 }, lag: m.info.pending,
      storageEvent: { type: e.op.type, ...done },
    });
  }

  /** After stream message `m` was applied: the position moves on (saved now when caught up, or `force`). */
  private applied(m: JsMsg, force: boolean, info: Parameters<NonNullable<ReplicaOptions["onApplied"]>>[0]): void {
    this.appliedSeq = m.seq;
    this.appliedDelivery = { consumer: m.info.consumer, seq: m.info.deliverySequence };
    this.savePosition(m.info.pending === 0 || force);
    this.options.onApplied?.(info);
  }

  /** The position file's names follow a rename (`to`) or delete (undefined) of `from`, children included. */
  private mailboxMoved(from: string, to: string | undefined): void {
    for (const name of Object.keys(this.mailboxes)) {
      // Children move with a rename; a delete leaves them (Dovecot keeps them, the parent \\NoSelect).
      const rest = name === from ? "" : to !== undefined && name.startsWith(from + "/") ? name.slice(from.length) : undefined;
      if (rest === undefined) continue;
      const guid = this.mailboxes[name];
      const seq = this.appliedSeqs[name];
      delete this.mailboxes[name];
      delete this.appliedSeqs[name];
      if (to === undefined) continue;
      this.mailboxes[to + rest] = guid;
      if (seq !== undefined) this.appliedSeqs[to + rest] = seq;
    }
  }

  /**
   * Whether the subject's last message is a delete after `seq`: then the
   * mailbox's earlier commits are not applied. One request per subject and
   * run (a delete is a GUID's last message: a new mailbox gets a new GUID).
   */
  private async deletedLater(subject: string, seq: number): Promise<boolean> {
    let at = this.deletedAt.get(subject);
    if (at === undefined) {
      let last;
      try {
        last = await retryTimeouts(() => this.conn.jsm.streams.getMessage(this.conn.names.stream, { last_by_subj: subject }), 3);
      } catch (err) {
        throw asReplicationError(err, `last message of ${subject}`);
      }
      at = decodeCommit(last.data, subject, last.seq).op?.type === "delete" ? last.seq : 0;
      this.deletedAt.set(subject, at);
    }
    return seq < at;
  }

  /**
   * Whether the subscriptions list at `seq` is older than the subject's last
   * one when this run first looked: a replica restarted from an earlier
   * position (or from the stream's start) goes straight to the current list
   * instead of passing through the old ones. One request per run; lists
   * published after it are newer, and applied.
   * @throws ReplicationError when JetStream does not answer.
   */
  private async subscriptionsSuperseded(subject: string, seq: number): Promise<boolean> {
    if (this.latestSubscriptionsSeq === undefined) {
      let last;
      try {
        last = await retryTimeouts(() => this.conn.jsm.streams.getMessage(this.conn.names.stream, { last_by_subj: subject }), 3);
      } catch (err) {
        throw asReplicationError(err, `last message of ${subject}`);
      }
      // Only a list supersedes: a subject ending with a promoted store's takeover (no list) has every list applied in order.
      this.latestSubscriptionsSeq = decodeStorageEvent(last.data, subject, last.seq).op.type === "subscriptions" ? last.seq : 0;
    }
    return seq < this.latestSubscriptionsSeq;
  }

  /** Writes the position when caught up, and at most every 100 ms while catching up. */
  private savePosition(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.lastSave < 100) return;
    this.lastSave = now;
    writePosition(this.options.positionFile, this.position());
  }

  private position(): ReplicaPosition {
    return {
      streamSeq: this.appliedSeq, stream: this.conn.names.stream, storageId: this.options.storageId, mailboxes: this.mailboxes, appliedSeqs: this.appliedSeqs,
      ...(this.storageSeq > 0 ? { storageSeq: this.storageSeq } : {}),
      ...(this.subscriptionsSeq > 0 ? { subscriptionsSeq: this.subscriptionsSeq } : {}),
    };
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  status(): ReplicaStatus {
    return {
      appliedSeq: this.appliedSeq, lag: this.pending + this.inFlight,
      appliedTransactions: this.appliedTx, skippedTransactions: this.skippedTx,
      appliedStorageEvents: this.appliedEvents, skippedStorageEvents: this.skippedEvents, mapLogRanges: this.mapRanges, error: this.failure,
    };
  }

  /**
   * Messages of the storage's subjects after the last one applied: those
   * its consumer delivered since (held by the client: queued behind the
   * subscription's iterator, put back, being applied; or on the wire),
   * counted exactly from delivery sequences (the consumer's last delivered
   * one minus the applied message's), plus those the server has not
   * delivered yet (the consumer's num_pending). Not from the
   * subscription's getPending(): that is the inner subscription's, blind to
   * the iterator's queue (it said 1 for a replica holding 14). After the
   * ordered consumer was made again (a gap, a node lost), its delivery
   * sequences start over: then the server counts from the applied
   * sequence (ReplicationConnection.countAfter). The consumer sits on one
   * node, which may be behind the stream's leader after it was down: then,
   * while the leader has a message after the applied one, the lag is at
   * least 1; it is 0 exactly when the replica applied the leader's last
   * message of the storage.
   * @throws ReplicationError when JetStream does not answer.
   */
  async lag(): Promise<number> {
    if (!this.sub) return 0;
    const subjects = storageSubjects(this.conn.names, this.options.storageId);
    // The applied point as of the call: what the replica applies meanwhile still counts.
    const applied = this.appliedSeq;
    const at = this.appliedDelivery;
    const deadline = Date.now() + 3 * this.conn.timeoutMs;
    const last = await this.conn.lastSequence(subjects, deadline);
    if (last <= applied) return 0;
    let info;
    try {
      info = await whileSettling(deadline, () => this.sub!.consumerInfo());
    } catch (err) {
      throw asReplicationError(err, `the replica's consumer of ${subjects}`);
    }
    if (at !== undefined && info.name === at.consumer) return Math.max(1, info.delivered.consumer_seq - at.seq + info.num_pending);
    return Math.max(1, await this.conn.countAfter(subjects, applied, deadline));
  }

  /**
   * Resolves once the replica applied everything the stream had for this
   * storage when it was called: the last message of the storage's subjects
   * as the stream's leader has it (not the consumer's count of pending
   * messages, which a consumer on a node still catching up gives too low).
   * @throws the error that stopped the replica; ReplicationError after `timeoutMs`.
   */
  async caughtUp(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    if (this.failure) throw this.failure;
    const target = await this.conn.lastSequence(storageSubjects(this.conn.names, this.options.storageId), deadline);
    while (this.appliedSeq < target) {
      if (this.failure) throw this.failure;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new ReplicationError(`replica applied stream sequence ${this.appliedSeq} after ${timeoutMs} ms; the stream's leader has ${target} for ${this.options.storageId}`, { path: this.options.positionFile });
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    if (this.failure) throw this.failure;
  }

  /**
   * Makes this replica's store a primary: stops applying, and returns a
   * Publisher that carries on every mailbox's subject from this store's log
   * (what it holds now came from the stream). Pass it to the storage's
   * commit hooks (replicatedCommitHooks); the old primary is fenced at its
   * next commit. Call `caughtUp()` first to lose nothing the old primary
   * published.
   */
  async promote(): Promise<Publisher> {
    await this.stop();
    return promoteStore(this.conn, this.storage, this.position());
  }

  /** Stops consuming (the position is saved), closes the replica's mailboxes; the storage stays open. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.sub?.unsubscribe();
    await this.loop;
    for (const box of this.open.values()) await box.close();
    this.open.clear();
  }
}
