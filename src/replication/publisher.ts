/**
 * The primary's side: every commit of a storage opened with these hooks is
 * published to its mailbox's subject, with its exact log bytes and the bodies
 * it saved (see wire.ts), under JetStream's expected-last-subject-sequence:
 * a cluster-wide compare-and-append that plays the role of the log lock
 * across machines. A writer whose expectation is stale is fenced
 * (ReplicationFencedError) and writes nothing more.
 *
 * Commit modes:
 * - `replicated`: `commit()` returns only once JetStream acknowledged the
 *   commit (stored on a majority of the ×3 stream's nodes).
 * - `local`: `commit()` returns after the local log append and a durable
 *   outbox record (outbox.ts); the outbox is published in the background,
 *   and what a killed process left in it is published by the next one.
 */
import { randomUUID } from "node:crypto";
import { NatsError } from "nats";
import type { CommitHooks, CommittedRange, Mailbox } from "../api/mailbox.js";
import type { MailboxTreeChange, MailboxTreeHooks, Storage, StorageChange, StorageHooks } from "../api/storage.js";
import type { StorageLogAppend } from "../drivers/driver.js";
import type { IndexMapState } from "../projections/state.js";
import { lookupUid, messageCount, position, recordAt } from "../projections/read.js";
import { modseqFieldOffset } from "../projections/apply-modseq.js";
import { decodeLogHeader } from "../log/header.js";
import { decodeLogSegment, readLogSegments } from "../log/segments.js";
import type { LogPosition } from "../log/types.js";
import { ReplicationError, ReplicationFencedError } from "../shared/errors.js";
import { INLINE_BUDGET_BYTES } from "./bodies.js";
import { LogFollower } from "./follow.js";
import { asReplicationError, type ReplicationConnection } from "./connection.js";
import { mailboxSubject, checkToken, isStoreLevelSubject, storageSubject, subscriptionsSubject } from "./subjects.js";
import {
  decodeCommit, decodeStorageEvent, encodeCommit, encodeStorageEvent, WIRE_VERSION,
  type MailboxOp, type SeededMessage, type SeededModseq, type ShippedBody, type ShippedCommit, type ShippedLogRange, type ShippedStorageEvent, type StorageOp,
} from "./wire.js";

export type CommitMode = "replicated" | "local";

/** Where a subject stands in the stream, as this writer knows it. */
export interface SubjectCursor {
  /** Stream sequence of the subject's last message (0: none). */
  lastSeq: number;
  /** The primary log position and modseq that message ended at. */
  end: LogPosition | undefined;
  modseq: bigint | undefined;
  /** The own mailbox GUID of the writer whose log `end` is a position of. */
  writerGuid: string | undefined;
  /** The mailbox name, UIDVALIDITY and op of that message (op: a create, rename or delete): how replicas know the mailbox now. */
  mailbox?: string;
  uidValidity?: number;
  op?: MailboxOp;
  /** On the storage subject: the last event's id (ShippedStorageEvent.eventId). */
  eventId?: string;
  /** The last message is this part of a seed that has more parts (`end` is undefined: the seed is not complete). */
  seedPart?: number;
}

/** What Publisher.precheck saw of a subject, outside the commit's locks. */
export interface Precheck {
  readonly subject: string;
  /** The writer's cursor of the subject when it looked (the same object, advanced by publishes since). */
  readonly cursor: SubjectCursor;
  /** The cursor's last sequence before the look. */
  readonly from: number;
  /** The subject's last sequence the look found. */
  readonly seen: number;
}

export interface PublisherOptions {
  /** At most this many messages per seed part (default 1000; bodies also split parts at the inline budget). */
  seedPartMessages?: number;
}

/** System flag bits a seed carries (Dovecot's MAIL_INDEX_FLAGS_MASK: not BACKEND or DIRTY, which are the primary format's). */
const SEED_FLAGS_MASK = 0x1f;

/** JetStream's "wrong last sequence" refusal of an expected-last-subject-sequence publish. */
const WRONG_LAST_SEQUENCE = 10071;
/** JetStream's "no message found". */
const NO_MESSAGE = 10037;

export class Publisher {
  private readonly cursors = new Map<string, SubjectCursor>();
  private fenced: ReplicationFencedError | undefined;
  /** Subject GUIDs by mailbox name (a renamed mailbox's entry moves with it). */
  private readonly subjectGuids: Map<string, string>;
  /** Each storage's identity as the storage subject's writer (storageWriterGuid). */
  private readonly storageGuids = new WeakMap<Storage, string>();
  private readonly seedPartMessages: number;
  /** publishCommit calls under way, by subject (settled either way). */
  private readonly publishing = new Map<string, Promise<void>>();

  /**
   * @param subjectGuids by mailbox name: the subject GUID of mailboxes whose
   *   subject is not their own GUID (a promoted replica carries on the
   *   primary's subjects; its position file keeps them).
   * @param options how seeds are cut into parts.
   */
  constructor(readonly conn: ReplicationConnection, readonly storageId: string, subjectGuids: ReadonlyMap<string, string> = new Map(), options: PublisherOptions = {}) {
    checkToken("storage id", storageId);
    this.subjectGuids = new Map(subjectGuids);
    this.seedPartMessages = options.seedPartMessages ?? 1000;
  }

  private guidOf(mailbox: Mailbox): string | undefined {
    return this.subjectGuids.get(mailbox.name) ?? mailbox.guid();
  }

  /** The subject GUID of mailbox `name` when it is not its own GUID (a promoted store's). */
  subjectGuidOf(name: string): string | undefined {
    return this.subjectGuids.get(name);
  }

  /** After a rename (`to`) or delete (undefined) of mailbox `from`: its subject GUID, and its children's, follow it. */
  mailboxMoved(from: string, to: string | undefined): void {
    for (const [name, guid] of [...this.subjectGuids]) {
      // Children move with a rename; a delete leaves them (Dovecot keeps them, the parent \\NoSelect).
      const rest = name === from ? "" : to !== undefined && name.startsWith(from + "/") ? name.slice(from.length) : undefined;
      if (rest === undefined) continue;
      this.subjectGuids.delete(name);
      if (to !== undefined) this.subjectGuids.set(to + rest, guid);
    }
  }

  /** Whether this writer has looked `subject` up since it last had to forget it. */
  knows(subject: string): boolean {
    return this.cursors.has(subject);
  }

  /** Drops what this writer knows of `subject` (the next commit looks it up). */
  forgetCursor(subject: string): void {
    this.cursors.delete(subject);
  }

  /** The error that fenced this writer, if one did. */
  get fencedBy(): ReplicationFencedError | undefined {
    return this.fenced;
  }

  /**
   * The GUID that names the mailbox's subject.
   * @throws ReplicationError when the mailbox has no GUID yet (an mbox never synced).
   */
  subjectGuidFor(mailbox: Mailbox): string {
    const guid = this.guidOf(mailbox);
    if (guid === undefined) throw new ReplicationError(`mailbox ${mailbox.name} has no GUID to name its subject`, { path: mailbox.indexPrefix });
    return guid;
  }

  /** @throws ReplicationError when the mailbox has no GUID yet (an mbox never synced). */
  subjectOf(mailbox: Mailbox): string {
    return mailboxSubject(this.conn.names, this.storageId, this.subjectGuidFor(mailbox));
  }

  /** @throws ReplicationFencedError once this writer was fenced: nothing is written. */
  checkNotFenced(): void {
    if (this.fenced) throw new ReplicationFencedError(`this writer was fenced: ${this.fenced.message}`, this.fenced.subject, this.fenced.expectedSequence);
  }

  /**
   * Before a commit (a mailbox change, a seed): may this writer publish the
   * mailbox's next message? One request (the subject's last message):
   * - a subject this writer published to before must still end with its
   *   last message (else another writer published since);
   * - a subject another store published last is not this writer's: a store
   *   takes a subject over only by promotion (promoteStore), which publishes
   *   a takeover message of its own.
   * The compare-and-append at publish still decides a race between this
   * check and the publish. A commit's check is precheck, then
   * confirmPrecheck under the log lock.
   * @throws ReplicationFencedError when it may not: nothing is written, locally or to the stream.
   */
  async verifyCursor(mailbox: Mailbox): Promise<void> {
    this.checkNotFenced();
    // A mailbox without a GUID yet (a new Maildir INBOX) gets its subject after its first commit.
    if (this.guidOf(mailbox) === undefined) return;
    // A log's identity is its mailbox's own GUID: random, and kept by every format (indexids are times, and collide).
    await this.verifySubject(this.subjectOf(mailbox), mailbox.guid()!, mailbox.position);
  }

  /**
   * verifyCursor for `subject`, written by the mailbox whose own GUID is
   * `writerGuid`, from its log at `here` (for the error).
   * @returns whether this look set the writer's cursor for `subject` (its first look, not beaten by another caller's).
   * @throws ReplicationFencedError as verifyCursor.
   */
  async verifySubject(subject: string, writerGuid: string, here: LogPosition): Promise<boolean> {
    this.checkNotFenced();
    const known = this.cursors.get(subject);
    const from = known?.lastSeq ?? 0;
    const now = await lastOnSubject(this.conn, subject);
    if (known) {
      this.checkSeen(subject, here, { subject, cursor: known, from, seen: now.lastSeq });
      return false;
    }
    if (now.lastSeq > 0 && now.writerGuid !== writerGuid) {
      this.fence(subject, here, `${subject} was last published by another store (mailbox GUID ${now.writerGuid}, stream sequence ${now.lastSeq}); promote this store to take it over`, now.lastSeq);
    }
    // A first look of another caller's that ended first keeps its cursor: a publish of theirs may be advancing it.
    if (this.cursors.has(subject)) return false;
    this.cursors.set(subject, now);
    return true;
  }

  /**
   * verifyCursor's round trip, made before the commit's locks
   * (CommitHooks.beforeCommitLocks): mdbox's map lock is storage-wide, and
   * commits of other mailboxes would take turns on it during the round
   * trip. What it saw is judged under the log lock (confirmPrecheck). A
   * first look at the subject (whose it is) is judged at once.
   * @returns what confirmPrecheck judges; undefined when the mailbox has no GUID yet, or another first look set the cursor.
   * @throws ReplicationFencedError when this writer was fenced, or the subject is another store's: nothing is written.
   */
  async precheck(mailbox: Mailbox): Promise<Precheck | undefined> {
    this.checkNotFenced();
    if (this.guidOf(mailbox) === undefined) return undefined;
    const subject = this.subjectOf(mailbox);
    const known = this.cursors.get(subject);
    if (known === undefined) {
      // Judged at once only if this look set the cursor: another's may have moved on by now.
      if (!(await this.verifySubject(subject, mailbox.guid()!, mailbox.position))) return undefined;
      const cursor = this.cursors.get(subject)!;
      return { subject, cursor, from: cursor.lastSeq, seen: cursor.lastSeq };
    }
    const from = known.lastSeq;
    return { subject, cursor: known, from, seen: (await lastOnSubject(this.conn, subject)).lastSeq };
  }

  /**
   * Under the mailbox's log lock, before anything is written: judges what
   * precheck saw. Where the cursor changed hands meanwhile (a publish that
   * timed out, a rename), or precheck had nothing to look at, verifyCursor
   * runs here, round trip and all.
   * @throws ReplicationFencedError as verifyCursor: nothing is written.
   */
  async confirmPrecheck(mailbox: Mailbox, found: Precheck | undefined): Promise<void> {
    this.checkNotFenced();
    if (found === undefined || this.guidOf(mailbox) === undefined || this.subjectOf(mailbox) !== found.subject || this.cursors.get(found.subject) !== found.cursor) {
      return this.verifyCursor(mailbox);
    }
    this.checkSeen(found.subject, mailbox.position, found);
  }

  /**
   * Fences unless the subject's last sequence `seen` is one of this
   * writer's: from `from` (the cursor's before the look) to the cursor's
   * now. This writer's publishes during the look (its other commits of the
   * mailbox, when the look held no lock) each expected the one before
   * (compare-and-append), so no other writer's message is among them.
   */
  private checkSeen(subject: string, here: LogPosition, { cursor, from, seen }: Precheck): void {
    if (seen < from || seen > cursor.lastSeq) {
      this.fence(subject, here, `another writer published to ${subject}: its last stream sequence is ${seen}, this writer expected ${cursor.lastSeq}`, cursor.lastSeq);
    }
  }

  private fence(subject: string, here: LogPosition, why: string, expected: number): never {
    this.cursors.delete(subject);
    this.fenced = new ReplicationFencedError(`${why}; nothing was written`, subject, expected, { fileSeq: here.fileSeq, offset: here.offset });
    throw this.fenced;
  }

  /** The subject's last stream message, as a cursor (cached after the first look). */
  async cursor(subject: string): Promise<SubjectCursor> {
    const known = this.cursors.get(subject);
    if (known) return known;
    const found = await lastOnSubject(this.conn, subject);
    this.cursors.set(subject, found);
    return found;
  }

  /**
   * Builds the message for everything the mailbox's log holds past the
   * subject's cursor, up to `committed.end`. `name`: the mailbox's name when
   * those commits were made, if it was renamed since (the outbox publishes later).
   */
  async build(mailbox: Mailbox, committed: Pick<CommittedRange, "end" | "state"> & Partial<Pick<CommittedRange, "storageLog">>, cursor: SubjectCursor, name = mailbox.name): Promise<ShippedCommit> {
    const from = this.fromOf(committed.end, cursor);
    const segments = readLogSegments(mailbox.indexPrefix, from, cursor.modseq, committed.end);
    const uids: number[] = [];
    // The running modseq at `end`: the next message's segment starts from it. The state's is the log end's, past `end` when the outbox drains in chunks or up to a rename.
    let modseq = committed.state.logModseq;
    for (const seg of segments) {
      for (const tx of decodeLogSegment(seg, mailbox.indexPrefix + ".log")) {
        for (const e of tx.entries) if (e.record.type === "append") for (const m of e.record.messages) uids.push(m.uid);
        modseq = tx.modseq;
      }
    }
    return {
      version: WIRE_VERSION, storageId: this.storageId, mailboxGuid: this.guidOf(mailbox)!, writerGuid: mailbox.guid()!, mailbox: name,
      uidValidity: committed.state.header.uidValidity, start: from, end: committed.end, modseq,
      segments, bodies: await this.bodiesOf(mailbox, committed.state, uids),
      ...(committed.storageLog?.length ? { mapLog: shippedLogRanges(committed.storageLog) } : {}),
    };
  }

  /** Where the next message of a subject starts in this writer's log. */
  fromOf(end: LogPosition, cursor: SubjectCursor): LogPosition {
    return cursor.end ?? { fileSeq: end.fileSeq, offset: 0 };
  }

  private async bodiesOf(mailbox: Mailbox, state: IndexMapState, uids: readonly number[]): Promise<ShippedBody[]> {
    const out: ShippedBody[] = [];
    let inline = 0;
    for (const uid of uids) {
      // A message expunged since it was saved (local mode publishes later) is expunged later in the same range:
      // the replica saves an empty placeholder for it, which that expunge removes.
      if (!lookupUid(state, uid)) {
        out.push({ uid, guid: "", receivedTime: 0, body: new Uint8Array(0), sizeBytes: 0, expunged: true });
        continue;
      }
      const b = await this.readBody(mailbox, state, uid);
      if (inline + b.sizeBytes <= INLINE_BUDGET_BYTES) {
        inline += b.sizeBytes;
        out.push(b);
      } else {
        out.push(await this.offload(mailbox, b));
      }
    }
    return out;
  }

  /** The body of `uid` with its GUID and INTERNALDATE, inline. */
  private async readBody(mailbox: Mailbox, state: IndexMapState, uid: number): Promise<ShippedBody> {
    const info = await mailbox.backend.messageInfo(state, uid);
    const body = await mailbox.readMessage(uid);
    return { uid, guid: info.guid, receivedTime: info.receivedTime, body, sizeBytes: body.length };
  }

  /** `b` with its bytes moved to the object store (over the inline budget of its message). */
  private async offload(mailbox: Mailbox, b: ShippedBody): Promise<ShippedBody> {
    const name = await this.conn.bodies.put(b.guid || `${mailbox.guid()}-${b.uid}`, b.body!);
    return { uid: b.uid, guid: b.guid, receivedTime: b.receivedTime, objectName: name, sizeBytes: b.sizeBytes };
  }

  /**
   * Whether replicas need a seed before the mailbox's log from offset 0 of
   * `end`'s file (where a subject without messages starts): that file
   * follows a rotated one (its header's prev_file_seq), or the index holds
   * messages the file does not append (an index rebuilt, or written by
   * something else). Either way the log does not reach back to the
   * mailbox's creation, and a replica fed the log alone would miss messages.
   */
  needsSeed(mailbox: Mailbox, end: LogPosition, state: IndexMapState): boolean {
    const path = mailbox.indexPrefix + ".log";
    const segments = readLogSegments(mailbox.indexPrefix, { fileSeq: end.fileSeq, offset: 0 }, undefined, end);
    if (decodeLogHeader(segments[0].headerBytes, path).prevFileSeq !== 0) return true;
    const appended = new Set<number>();
    for (const seg of segments) {
      for (const tx of decodeLogSegment(seg, path)) {
        for (const e of tx.entries) if (e.record.type === "append") for (const m of e.record.messages) appended.add(m.uid);
      }
    }
    for (let i = 0; i < messageCount(state); i++) if (!appended.has(state.records.uidAt(i))) return true;
    return false;
  }

  /**
   * Publishes a seed of the mailbox as `state` holds it at log position
   * `end` (which `state` must reflect: take both under the log lock, as the
   * afterCommit hook has them): UIDVALIDITY, next UID, and per message its
   * UID, flags, keywords, GUID, INTERNALDATE and body, in parts of at most
   * `seedPartMessages` messages and the inline body budget; then, when the
   * index keeps them, the messages' modseqs (as many per part); each part
   * fenced by the subject's last sequence. Only the last part moves the
   * cursor to `end`: the commits after it continue from there. A seed left
   * unfinished (a writer killed between parts) is published again whole by
   * the next writer; replicas apply a part they have already as nothing.
   * @throws ReplicationFencedError, ReplicationError as publish().
   */
  async publishSeed(mailbox: Mailbox, subject: string, end: LogPosition, state: IndexMapState, cursor: SubjectCursor, name = mailbox.name): Promise<void> {
    let part = 0;
    let messages: SeededMessage[] = [];
    let bodies: ShippedBody[] = [];
    let modseqs: SeededModseq[] = [];
    let inline = 0;
    const tracksModseqs = modseqFieldOffset(state.extensions) >= 0;
    const flush = async (last: boolean) => {
      await this.publish(subject, {
        version: WIRE_VERSION, storageId: this.storageId, mailboxGuid: this.guidOf(mailbox)!, writerGuid: mailbox.guid()!, mailbox: name,
        uidValidity: state.header.uidValidity, start: end, end, modseq: state.logModseq, segments: [], bodies,
        seed: { part, last, nextUid: state.header.nextUid, keywords: [...state.keywords], tracksModseqs, messages, modseqs },
      }, cursor);
      part++;
      messages = [];
      bodies = [];
      modseqs = [];
      inline = 0;
    };
    for (let seq = 1; seq <= messageCount(state); seq++) {
      const r = recordAt(state, seq)!;
      let b = await this.readBody(mailbox, state, r.uid);
      const fits = inline + b.sizeBytes <= INLINE_BUDGET_BYTES;
      // A body that fits a part of its own starts one rather than going to the object store.
      if (messages.length >= this.seedPartMessages || (!fits && messages.length > 0 && b.sizeBytes <= INLINE_BUDGET_BYTES)) await flush(false);
      if (inline + b.sizeBytes <= INLINE_BUDGET_BYTES) inline += b.sizeBytes;
      else b = await this.offload(mailbox, b);
      messages.push({ uid: r.uid, flags: r.flags & SEED_FLAGS_MASK, keywords: r.keywords });
      bodies.push(b);
    }
    if (tracksModseqs) {
      for (let seq = 1; seq <= messageCount(state); seq++) {
        if (messages.length + modseqs.length >= this.seedPartMessages) await flush(false);
        const r = recordAt(state, seq)!;
        modseqs.push({ uid: r.uid, modseq: r.modseq });
      }
    }
    await flush(true);
  }

  /**
   * Seeds the mailbox's subject explicitly (an operator adding replication
   * to an existing store, before its first commit): when the subject has no
   * complete seed or commit yet, publishes a seed of the mailbox's current
   * state, whether or not its log reaches back to its creation. Nothing
   * when the subject has messages already. The state, its position and the
   * bodies are read under the mailbox's log lock (underLogLock), so another
   * process's expunge waits for the seed rather than removing a body it
   * still has to read; what others commit after it follows it on the subject.
   * @returns whether a seed was published.
   * @throws ReplicationFencedError, ReplicationError as publish().
   */
  async seed(mailbox: Mailbox): Promise<boolean> {
    await this.verifyCursor(mailbox);
    const subject = this.subjectOf(mailbox);
    if ((await this.cursor(subject)).end !== undefined) return false;
    let seeded = false;
    await underLogLock(mailbox, async (state) => {
      // A commit of this process may have published while the lock was waited for.
      const cursor = await this.cursor(subject);
      if (cursor.end !== undefined) return;
      await this.publishSeed(mailbox, subject, position(state), state, cursor);
      seeded = true;
    });
    return seeded;
  }

  /**
   * Publishes everything the mailbox's log holds past the subject's cursor,
   * up to `committed.end`, in one message (again once, when an earlier
   * publish of this writer turns out to have been stored late).
   * @throws as publish().
   */
  async publishCommit(mailbox: Mailbox, committed: Pick<CommittedRange, "end" | "state"> & Partial<Pick<CommittedRange, "storageLog" | "releaseStorageLock">>): Promise<void> {
    const subject = this.subjectOf(mailbox);
    const run = this.publishCommitTo(subject, mailbox, committed);
    const settled = run.then(() => undefined, () => undefined);
    this.publishing.set(subject, settled);
    void settled.then(() => {
      if (this.publishing.get(subject) === settled) this.publishing.delete(subject);
    });
    // A commit's map lock is let go for the round trip (its map records are in `committed` already, its bodies
    // are safe under the log lock: see underLogLock), so other mailboxes' commits do not wait for this ack. Once
    // registered above: a purge that takes the map lock next publishes after this (settled()).
    await committed.releaseStorageLock?.();
    return run;
  }

  /** Resolves once every publish of a commit under way in this writer settled (a purge's event then follows the expunges it reclaims). */
  async settled(): Promise<void> {
    await Promise.all(this.publishing.values());
  }

  /**
   * Whether the mailbox's subject has its log up to `end` as far as this
   * writer knows, once the publishes of it under way settled (no request).
   */
  async has(mailbox: Mailbox, end: LogPosition): Promise<boolean> {
    if (this.guidOf(mailbox) === undefined) return false;
    const subject = this.subjectOf(mailbox);
    await this.publishing.get(subject);
    const cursor = this.cursors.get(subject);
    return cursor?.end !== undefined && !isBefore(cursor.end, end);
  }

  private async publishCommitTo(subject: string, mailbox: Mailbox, committed: Pick<CommittedRange, "end" | "state"> & Partial<Pick<CommittedRange, "storageLog">>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const cursor = await this.cursor(subject);
      if (cursor.end !== undefined && !isBefore(cursor.end, committed.end)) return; // already there
      try {
        // A subject without a complete seed or commit starts at the log file holding `end`: a seed first when that misses history.
        if (cursor.end === undefined && this.needsSeed(mailbox, committed.end, committed.state)) await this.publishSeed(mailbox, subject, committed.end, committed.state, cursor);
        else await this.publish(subject, await this.build(mailbox, committed, cursor), cursor);
        return;
      } catch (err) {
        if (!(err instanceof OwnPublishLanded) || attempt > 0) throw err;
      }
    }
  }

  /**
   * Publishes `shipped` on `subject` expecting `cursor.lastSeq` as the
   * subject's last sequence, and advances the cursor.
   * @throws ReplicationFencedError when another writer published since (nothing is written; this writer stays fenced).
   * @throws ReplicationError when JetStream does not acknowledge in time.
   */
  async publish(subject: string, shipped: ShippedCommit, cursor: SubjectCursor): Promise<number> {
    const seed = shipped.seed;
    const seq = await this.compareAndAppend(subject, encodeCommit(shipped), cursor, {
      // A rename or delete ends where the message before it did: its id names the op and the sequence it follows.
      // A seed part names the sequence it follows too: a seed published again (after a killed writer's parts) is not a duplicate.
      msgID: seed
        ? `${subject}@seed@${cursor.lastSeq}:${seed.part}`
        : `${subject}@${shipped.end.fileSeq}:${shipped.end.offset}:${shipped.modseq}${shipped.op ? `:${shipped.op.type}@${cursor.lastSeq}:${shipped.mailbox}` : ""}`,
      writerGuid: shipped.writerGuid,
      here: shipped.end,
      what: seed ? `seed part ${seed.part} at ${shipped.end.fileSeq}:${shipped.end.offset}` : `commit ending at ${shipped.end.fileSeq}:${shipped.end.offset}`,
      isOwn: (now) => (seed && !seed.last ? now.seedPart === seed.part : now.end !== undefined && !isBefore(shipped.end, now.end)),
    });
    cursor.seedPart = seed && !seed.last ? seed.part : undefined;
    if (cursor.seedPart !== undefined) return seq;
    cursor.end = shipped.end;
    cursor.modseq = shipped.modseq;
    cursor.mailbox = shipped.mailbox;
    cursor.uidValidity = shipped.uidValidity;
    cursor.op = shipped.op;
    return seq;
  }

  /**
   * Publishes a storage event on the storage subject, expecting its last
   * sequence as this writer knows it (the same fencing as a commit's).
   * An event of this writer stored after a timed-out publish counts as
   * published: the event says what was done, and it was.
   * @throws ReplicationFencedError, ReplicationError as publish().
   */
  async publishStorageEvent(event: ShippedStorageEvent): Promise<number> {
    const subject = storageSubject(this.conn.names, this.storageId);
    return this.publishAt(subject, event, await this.cursor(subject));
  }

  /**
   * Publishes a mailbox subject's takeover marker (takeOver) expecting
   * `cursor.lastSeq`. Its id names it a takeover of that sequence, not the
   * position a commit's id names: the store's log may still end where its
   * own last commit on the subject did (promoted back after another store's
   * takeover that added no log bytes), and that commit's id would make
   * JetStream take the marker for a duplicate.
   * @throws as publish().
   */
  async publishTakeover(subject: string, marker: ShippedCommit, cursor: SubjectCursor): Promise<number> {
    return this.compareAndAppend(subject, encodeCommit(marker), cursor, {
      msgID: `${subject}@takeover@${cursor.lastSeq}`, writerGuid: marker.writerGuid, here: marker.end, what: `takeover at ${marker.end.fileSeq}:${marker.end.offset}`,
      isOwn: (now) => now.end !== undefined && !isBefore(marker.end, now.end),
    });
  }

  /** publishStorageEvent expecting `cursor` (a takeover's: the sequence the replica applied). */
  async publishAt(subject: string, event: ShippedStorageEvent, cursor: SubjectCursor): Promise<number> {
    try {
      return await this.compareAndAppend(subject, encodeStorageEvent(event), cursor, {
        msgID: `${subject}@${event.eventId}`, writerGuid: event.writerGuid, here: NO_POSITION, what: `${event.op.type} event`,
        isOwn: (now) => now.eventId === event.eventId,
      });
    } catch (err) {
      if (err instanceof OwnPublishLanded) return this.cursors.get(subject)!.lastSeq;
      throw err;
    }
  }

  /**
   * Appends `data` to `subject` if the subject's last sequence is still
   * `cursor.lastSeq` (JetStream's compare-and-append), and advances the
   * cursor's sequence and writer.
   * @throws OwnPublishLanded when this writer's earlier publish (`isOwn` tells it by the subject's last message) was stored after its timeout.
   * @throws ReplicationFencedError when another writer published since (nothing is written; this writer stays fenced).
   * @throws ReplicationError when JetStream does not acknowledge in time.
   */
  private async compareAndAppend(subject: string, data: Uint8Array, cursor: SubjectCursor, m: {
    msgID: string; writerGuid: string; here: LogPosition; what: string; isOwn: (now: SubjectCursor) => boolean;
  }): Promise<number> {
    let ack;
    try {
      // The id names the writer: JetStream acknowledges a message whose id it stored within its duplicate window with
      // that message's sequence and stores nothing, and another store's log (a promoted replica's is byte-for-byte the
      // old primary's) can end at the same position and modseq, which is all a commit's id says.
      const msgID = `${m.msgID}:by:${m.writerGuid}`;
      ack = await this.conn.js.publish(subject, data, { expect: { lastSubjectSequence: cursor.lastSeq }, msgID, timeout: this.conn.timeoutMs });
    } catch (err) {
      if (err instanceof NatsError && err.api_error?.err_code === WRONG_LAST_SEQUENCE) {
        const now = await lastOnSubject(this.conn, subject);
        if (now.lastSeq > cursor.lastSeq && now.writerGuid === m.writerGuid && m.isOwn(now)) {
          // This writer's own earlier publish, whose acknowledgement it stopped waiting for, was stored after all.
          this.cursors.set(subject, now);
          throw new OwnPublishLanded(`${subject}: an earlier publish of this writer was stored at stream sequence ${now.lastSeq} after its timeout`, { path: subject });
        }
        this.cursors.delete(subject);
        this.fenced = new ReplicationFencedError(
          `another writer published to ${subject} after stream sequence ${cursor.lastSeq} (${err.api_error.description}); ${m.what} not published`,
          subject, cursor.lastSeq, { fileSeq: m.here.fileSeq, offset: m.here.offset },
        );
        throw this.fenced;
      }
      // Unknown outcome (a timeout during a leader election): the next commit looks the subject up again,
      // and finds either its own message (published after all) or the one before it.
      this.cursors.delete(subject);
      throw asReplicationError(err, `publish to ${subject}`);
    }
    if (ack.duplicate) await this.checkDuplicate(subject, ack.seq, cursor, m);
    cursor.lastSeq = ack.seq;
    cursor.writerGuid = m.writerGuid;
    return ack.seq;
  }

  /**
   * After JetStream acknowledged a publish as a duplicate (stored nothing):
   * that is this writer's message stored before (a retry) only when the
   * acknowledged sequence is the subject's last message and this writer's
   * own; anything else is a message this publish did not write, which must
   * not pass for it.
   * @throws ReplicationFencedError when it is not: nothing was written.
   */
  private async checkDuplicate(subject: string, seq: number, cursor: SubjectCursor, m: { writerGuid: string; here: LogPosition; what: string; isOwn: (now: SubjectCursor) => boolean }): Promise<void> {
    const now = await lastOnSubject(this.conn, subject);
    if (now.lastSeq === seq && now.writerGuid === m.writerGuid && m.isOwn(now)) return;
    this.cursors.delete(subject);
    this.fenced = new ReplicationFencedError(
      `JetStream took the ${m.what} for a duplicate of stream sequence ${seq}, and ${subject} ends with stream sequence ${now.lastSeq} of writer ${now.writerGuid}, not this writer's; nothing was written`,
      subject, cursor.lastSeq, { fileSeq: m.here.fileSeq, offset: m.here.offset },
    );
    throw this.fenced;
  }

  /**
   * The identity of `storage` as a writer of its storage subject: its
   * INBOX's own GUID (random, made with the INBOX's index, which every
   * dbox store has; Dovecot never deletes INBOX). Another store, a
   * promoted replica among them, has another one.
   * @throws ReplicationError when INBOX has no GUID yet (a Maildir or mbox INBOX never committed to).
   */
  async storageWriterGuid(storage: Storage): Promise<string> {
    const known = this.storageGuids.get(storage);
    if (known !== undefined) return known;
    const inbox = await storage.openMailbox("INBOX");
    let guid;
    try {
      guid = inbox.guid();
    } finally {
      await inbox.close();
    }
    if (guid === undefined) throw new ReplicationError("INBOX has no GUID yet to name this store as the storage subject's writer", { path: storage.location.root });
    this.storageGuids.set(storage, guid);
    return guid;
  }

  /**
   * Before a purge or altmove: may this writer publish on the storage
   * subject? As verifyCursor for a mailbox (one request).
   * @throws ReplicationFencedError when it may not: nothing is changed, locally or in the stream.
   */
  async verifyStorageSubject(storage: Storage): Promise<void> {
    this.checkNotFenced();
    await this.verifySubject(storageSubject(this.conn.names, this.storageId), await this.storageWriterGuid(storage), NO_POSITION);
  }

  /**
   * Before a subscribe or unsubscribe (replicated mode), or a local-mode
   * drain of them: may this writer publish on the subscriptions subject? As
   * verifyStorageSubject, with the same writer identity.
   * @throws ReplicationFencedError when it may not: nothing is changed, locally or in the stream.
   */
  async verifySubscriptionsSubject(storage: Storage): Promise<void> {
    this.checkNotFenced();
    await this.verifySubject(subscriptionsSubject(this.conn.names, this.storageId), await this.storageWriterGuid(storage), NO_POSITION);
  }

  /**
   * Publishes the storage's subscriptions as they are now (the whole list,
   * see StorageOp) on the subscriptions subject, fenced as a storage event.
   * Read at publish time, not taken from the change: a local-mode drain
   * publishes several changes as one list, and a list read after this
   * writer's change holds it.
   * @throws ReplicationFencedError, ReplicationError as publish().
   */
  async publishSubscriptions(storage: Storage): Promise<number> {
    const subject = subscriptionsSubject(this.conn.names, this.storageId);
    const op: StorageOp = { type: "subscriptions", names: await storage.listSubscriptions() };
    return this.publishAt(subject, storageEventOf(this, await this.storageWriterGuid(storage), op, []), await this.cursor(subject));
  }

  /**
   * Seeds the subscriptions subject (as `seed` does a mailbox's): when it
   * has no message yet and the storage has subscriptions, publishes them.
   * @returns whether a list was published.
   * @throws ReplicationFencedError, ReplicationError as publish().
   */
  async seedSubscriptions(storage: Storage): Promise<boolean> {
    await this.verifySubscriptionsSubject(storage);
    const cursor = await this.cursor(subscriptionsSubject(this.conn.names, this.storageId));
    if (cursor.lastSeq > 0 || (await storage.listSubscriptions()).length === 0) return false;
    await this.publishSubscriptions(storage);
    return true;
  }
}

/** Storage events have no position in a mailbox log: errors about them name none. */
const NO_POSITION: LogPosition = { fileSeq: 0, offset: 0 };

/**
 * The map log ranges a commit, purge or altmove appended, as exact bytes.
 * Appends that follow each other (one lock scope) become one range.
 */
export function shippedLogRanges(appends: readonly StorageLogAppend[]): ShippedLogRange[] {
  const merged: StorageLogAppend[] = [];
  for (const a of appends) {
    const last = merged[merged.length - 1];
    if (last !== undefined && last.indexPrefix === a.indexPrefix && !isBefore(a.start, last.end) && !isBefore(last.end, a.start)) merged[merged.length - 1] = { ...last, end: a.end };
    else merged.push(a);
  }
  return merged.map((a) => ({ log: a.log, start: a.start, end: a.end, segments: readLogSegments(a.indexPrefix, a.start, a.modseqBefore, a.end) }));
}

/** The storage event of `change`, with the map log it appended. */
export function storageEventOf(publisher: Publisher, writerGuid: string, op: StorageOp, storageLog: readonly StorageLogAppend[]): ShippedStorageEvent {
  return { version: WIRE_VERSION, kind: "storage", storageId: publisher.storageId, writerGuid, eventId: randomUUID(), op, mapLog: shippedLogRanges(storageLog) };
}

/**
 * The wire op of a purge or altmove. An altmove names the mailbox by its
 * subject GUID (a promoted store's is the old primary's), its name and
 * UIDVALIDITY, as replicas know it.
 */
export function storageOpOf(publisher: Publisher, change: Exclude<StorageChange, { type: "subscription" }>): StorageOp {
  if (change.type === "purge") return { type: "purge" };
  const m = change.mailbox;
  return {
    type: "altmove", mailboxGuid: publisher.subjectGuidOf(m.name) ?? m.guid ?? "", mailbox: m.name, uidValidity: m.uidValidity,
    uids: [...change.uids], toAlt: change.toAlt,
  };
}

/**
 * Storage hooks (StorageOptions.storageHooks) that publish every purge and
 * altmove on the storage subject, with the map log bytes it wrote, and
 * every subscribe and unsubscribe that changed the file on the
 * subscriptions subject, before the call returns (`replicated` mode). The
 * subject is checked first, as before a commit: a fenced writer purges,
 * moves or (un)subscribes nothing.
 */
export function replicatedStorageHooks(publisher: Publisher): StorageHooks {
  return {
    beforeStorageChange: async (change, storage) =>
      change.type === "subscription" ? publisher.verifySubscriptionsSubject(storage) : publisher.verifyStorageSubject(storage),
    afterStorageChange: async (change, storageLog, storage) => {
      if (change.type === "subscription") {
        await publisher.publishSubscriptions(storage);
        return;
      }
      // Commits publish without the map lock: the expunges this purge reclaimed may still be on their way.
      await publisher.settled();
      await publisher.publishStorageEvent(storageEventOf(publisher, await publisher.storageWriterGuid(storage), storageOpOf(publisher, change), storageLog));
    },
  };
}

/**
 * A create, rename or delete as its stream message tells it: the change,
 * the subject's GUID, and for a create the new log's end and modseq (where
 * the mailbox's first commit continues from). The outbox keeps these for
 * `local` mode.
 */
export interface TreeOp {
  change: MailboxTreeChange;
  subjectGuid: string;
  /** A create's: the new mailbox's log end and modseq. */
  end?: LogPosition;
  modseq?: bigint;
}

/** The change's mailbox as a tree op names it: its subject GUID (undefined: it has none, so no replica has it). */
export function treeOpOf(publisher: Publisher, change: MailboxTreeChange, created?: Mailbox): TreeOp | undefined {
  if (change.type === "create") {
    // A promoted store's mailbox of that name is on a subject of the old primary's: it is not new there.
    const guid = created?.guid();
    if (guid === undefined || publisher.subjectGuidOf(change.mailbox.name) !== undefined) return undefined;
    return { change, subjectGuid: guid, end: created!.position, modseq: created!.state.logModseq };
  }
  const subjectGuid = publisher.subjectGuidOf(change.mailbox.name) ?? change.mailbox.guid;
  return subjectGuid === undefined || change.mailbox.guid === undefined ? undefined : { change, subjectGuid };
}

/**
 * Publishes a mailbox create, rename or delete (after it was done locally)
 * as a message on the mailbox's own subject, `mail.<storage-id>.<mailbox-guid>`.
 * Why that subject: the GUID stays the same across a rename (dbox and
 * Maildir keep it in the index, which moves with the mailbox), so the
 * mailbox's commits before and after the rename share the subject, and a
 * stream keeps one subject's messages in order: a replica applies the
 * rename after every commit published before it and before every commit
 * after it (which carry the new name). The publish expects the subject's
 * last sequence, as a commit's does, so a fenced writer's rename or delete
 * is refused by JetStream too. A rename or delete of a subject with no
 * message yet (a mailbox never committed to while replicating) is not
 * published: no replica has it; nor is one that is the subject's last
 * message already (the outbox's retry after a kill).
 *
 * A create is the first message of its subject, with no log bytes and the
 * new log's end as the position the mailbox's first commit continues from
 * (the creation records stay out of the stream: a replica creates the
 * mailbox with the shipped UIDVALIDITY, its driver writing its own). Its
 * GUID is new, so its subject is normally empty: the publish expects that,
 * and a writer that finds its own create (or commit) there already
 * publishes nothing; the subject's owner is checked first.
 * @throws ReplicationFencedError, ReplicationError as publish().
 */
export async function publishTreeOp(publisher: Publisher, op: TreeOp): Promise<void> {
  const { change, subjectGuid } = op;
  const writerGuid = change.mailbox.guid!;
  const subject = mailboxSubject(publisher.conn.names, publisher.storageId, subjectGuid);
  const name = change.type === "rename" ? change.to : change.mailbox.name;
  let marker: ShippedCommit;
  if (change.type === "create") {
    await publisher.verifySubject(subject, writerGuid, op.end!);
    const cursor = await publisher.cursor(subject);
    if (cursor.lastSeq > 0) return;
    marker = {
      version: WIRE_VERSION, storageId: publisher.storageId, mailboxGuid: subjectGuid, writerGuid, mailbox: name, uidValidity: change.mailbox.uidValidity,
      start: op.end!, end: op.end!, modseq: op.modseq!, segments: [], bodies: [], op: { type: "create" },
    };
    await publisher.publish(subject, marker, cursor);
    return;
  }
  const cursor = await publisher.cursor(subject);
  const wireOp: MailboxOp = change.type === "rename" ? { type: "rename", from: change.mailbox.name } : { type: "delete" };
  if (cursor.lastSeq === 0 || isSameOp(cursor, name, wireOp)) return;
  const at = cursor.end ?? { fileSeq: 0, offset: 0 };
  marker = {
    version: WIRE_VERSION, storageId: publisher.storageId, mailboxGuid: subjectGuid, writerGuid, mailbox: name, uidValidity: change.mailbox.uidValidity,
    start: at, end: at, modseq: cursor.modseq ?? 0n, segments: [], bodies: [], op: wireOp,
  };
  await publisher.publish(subject, marker, cursor);
}

function isSameOp(cursor: SubjectCursor, name: string, op: MailboxOp): boolean {
  if (cursor.op === undefined || cursor.op.type !== op.type || cursor.mailbox !== name) return false;
  return cursor.op.type !== "rename" || (op.type === "rename" && cursor.op.from === op.from);
}

/**
 * Publishes a create, rename or delete at once (`replicated` mode; see
 * publishTreeOp). `mailbox`: for a create, the new mailbox, open. A
 * mailbox without a GUID yet (an mbox not synced) publishes nothing: its
 * first commit creates it on replicas.
 * @throws ReplicationFencedError when this writer was fenced, or the subject is another store's.
 * @throws ReplicationError as publish().
 */
export async function publishTreeChange(publisher: Publisher, change: MailboxTreeChange, mailbox?: Mailbox): Promise<void> {
  if (change.type === "create" && mailbox === undefined) {
    throw new ReplicationError(`the create of ${change.mailbox.name} came without its mailbox: nothing to publish from`, { path: change.mailbox.name });
  }
  publisher.checkNotFenced();
  const op = treeOpOf(publisher, change, mailbox);
  if (op !== undefined) await publishTreeOp(publisher, op);
  if (change.type !== "create") publisher.mailboxMoved(change.mailbox.name, change.type === "rename" ? change.to : undefined);
}

/**
 * Storage hooks (StorageOptions.mailboxTreeHooks) that publish every
 * mailbox create, rename and delete before the call returns (`replicated`
 * mode): the writer's check of the subject (Publisher.verifyCursor) runs
 * before the local rename or delete, so a fenced writer renames or deletes
 * nothing. A fenced writer's create is refused after the local create
 * (there is no mailbox to check before it), which then stays local.
 */
export function replicatedTreeHooks(publisher: Publisher, options: ReplicatedHooksOptions = {}): MailboxTreeHooks {
  const precheck = options.precheck ?? true;
  return {
    beforeMailboxChange: async (_change, mailbox) => {
      // Without the precheck, a subject this writer has not looked up yet is still checked for whose it is (as afterCommit does).
      if (precheck || (mailbox.guid() !== undefined && !publisher.knows(publisher.subjectOf(mailbox)))) return publisher.verifyCursor(mailbox);
      publisher.checkNotFenced();
    },
    afterMailboxChange: async (change, mailbox) => publishTreeChange(publisher, change, mailbox),
  };
}

/**
 * The subject moved on by this writer's own message, stored after its
 * publish timed out: not a fence. Publisher.publishCommit builds again from
 * it; the outbox's drain does too.
 */
export class OwnPublishLanded extends ReplicationError {}

function isBefore(a: LogPosition, b: LogPosition): boolean {
  return a.fileSeq < b.fileSeq || (a.fileSeq === b.fileSeq && a.offset < b.offset);
}

/** The cursor of `subject`: its last message's sequence and where it ended. */
export async function lastOnSubject(conn: ReplicationConnection, subject: string): Promise<SubjectCursor> {
  try {
    const m = await conn.jsm.streams.getMessage(conn.names.stream, { last_by_subj: subject });
    if (isStoreLevelSubject(subject)) {
      const e = decodeStorageEvent(m.data, subject, m.seq);
      return { lastSeq: m.seq, end: undefined, modseq: undefined, writerGuid: e.writerGuid, eventId: e.eventId };
    }
    const c = decodeCommit(m.data, subject, m.seq);
    // An unfinished seed is no position to continue from: the next writer seeds again.
    if (c.seed && !c.seed.last) return { lastSeq: m.seq, end: undefined, modseq: undefined, writerGuid: c.writerGuid, mailbox: c.mailbox, uidValidity: c.uidValidity, seedPart: c.seed.part };
    return { lastSeq: m.seq, end: c.end, modseq: c.modseq, writerGuid: c.writerGuid, mailbox: c.mailbox, uidValidity: c.uidValidity, op: c.op };
  } catch (err) {
    if (err instanceof NatsError && err.api_error?.err_code === NO_MESSAGE) return { lastSeq: 0, end: undefined, modseq: undefined, writerGuid: undefined };
    throw asReplicationError(err, `last message of ${subject}`);
  }
}

/**
 * Takes `mailbox`'s subject over: publishes a takeover message (no log
 * bytes; this store's own GUID as writer, its log's end as the position the
 * next message continues from) expecting `appliedSeq`, the subject's last
 * message this store applied as a replica. From then on the old writer is
 * fenced at its next commit.
 * @throws ReplicationFencedError when the subject has messages this store did not apply (catch up first).
 */
export async function takeOver(publisher: Publisher, mailbox: Mailbox, subjectGuid: string, appliedSeq: number): Promise<void> {
  const subject = mailboxSubject(publisher.conn.names, publisher.storageId, subjectGuid);
  const state = await mailbox.refresh();
  const marker: ShippedCommit = {
    version: WIRE_VERSION, storageId: publisher.storageId, mailboxGuid: subjectGuid, mailbox: mailbox.name,
    uidValidity: state.header.uidValidity, writerGuid: mailbox.guid()!, start: mailbox.position, end: mailbox.position,
    modseq: state.logModseq, segments: [], bodies: [],
  };
  const cursor: SubjectCursor = { lastSeq: appliedSeq, end: undefined, modseq: undefined, writerGuid: undefined };
  await publisher.publishTakeover(subject, marker, cursor);
  publisher.forgetCursor(subject);
}

/**
 * Takes a store-level subject (by default the storage subject; the
 * subscriptions subject too) over for a promoted store (as takeOver a
 * mailbox's): a takeover event expecting `appliedSeq`, the subject's last
 * message this store applied as a replica, with this store's identity as
 * writer. The old primary's next purge, altmove or (un)subscribe is then fenced.
 * @throws ReplicationFencedError when the subject has events this store did not apply.
 */
export async function takeOverStorage(publisher: Publisher, storage: Storage, appliedSeq: number, subject = storageSubject(publisher.conn.names, publisher.storageId)): Promise<void> {
  publisher.forgetCursor(subject);
  const event = storageEventOf(publisher, await publisher.storageWriterGuid(storage), { type: "takeover" }, []);
  await publisher.publishAt(subject, event, { lastSeq: appliedSeq, end: undefined, modseq: undefined, writerGuid: undefined });
}

export interface ReplicatedHooksOptions {
  /**
   * Check before each commit that the subject still ends with this
   * writer's last message (one JetStream request, made before the commit
   * takes its locks, judged under the log lock), so that a fenced writer
   * writes nothing locally either (default true). A writer fenced between
   * the request and the local write (the wait for the locks among it) is
   * refused at publish, as below. Without it
   * a fenced writer's commit reaches its own log, and JetStream's
   * compare-and-append refuses it at publish.
   */
  precheck?: boolean;
  /**
   * Publish what other programs append to a mailbox's log (doveadm, a
   * force-resync) as soon as this process notices it (default true): each
   * mailbox opened (Storage.openMailbox) or committed to is followed
   * (follow.ts) until it is closed.
   * Without it, those appends go with the mailbox's next commit.
   */
  followExternal?: boolean;
  /**
   * Told why a publish of noticed appends, or the watch of a mailbox's log,
   * failed (anything thrown that is not an Error comes as a
   * ReplicationError). The mailbox is not followed from then until its
   * next commit, which publishes what was noticed or fails the same way
   * (fenced, the stream unreachable). Without it, that commit is the only
   * report.
   */
  onFollowError?(err: Error, mailbox: Mailbox): void;
}

/**
 * Commit hooks that publish every commit before `commit()` returns
 * (`replicated` mode), and, between commits, what other programs append to
 * the mailboxes open here (ReplicatedHooksOptions.followExternal).
 */
export function replicatedCommitHooks(publisher: Publisher, options: ReplicatedHooksOptions = {}): CommitHooks {
  const precheck = options.precheck ?? true;
  // Made here, outside every lock: the follower publishes from this context (see LogFollower.scope).
  const follower = options.followExternal === false ? undefined : new LogFollower({
    has: (mailbox, end) => publisher.has(mailbox, end),
    // Under the log lock, as a commit: the state and bodies read are the log end's, and this process's commits wait.
    publishNoticed: (mailbox) => underLogLock(mailbox, (state) => publishLogEnd(publisher, mailbox, { end: position(state), state })),
    onError: options.onFollowError,
  });
  return {
    // Outside every lock: the precheck's round trip would otherwise hold mdbox's storage-wide map lock.
    beforeCommitLocks: async (mailbox) => {
      if (!precheck) return undefined;
      const found = await publisher.precheck(mailbox);
      return () => publisher.confirmPrecheck(mailbox, found);
    },
    beforeCommit: async () => publisher.checkNotFenced(),
    afterCommit: async (mailbox, committed) => {
      try {
        await publishLogEnd(publisher, mailbox, committed);
      } catch (err) {
        // A refresh that logged others' changes to the mail files does not fail for want of the stream: the next commit publishes them, or reports why not.
        if (committed.sync && err instanceof ReplicationError) return;
        throw err;
      }
      follower?.follow(mailbox);
    },
    // Followed from its open, not its first commit here: what others append to a mailbox this process only reads is published too.
    afterOpen: async (mailbox) => follower?.follow(mailbox),
    // Its watch and log descriptor go with it; a publish of what was noticed before finishes first.
    beforeClose: async (mailbox) => follower?.unfollow(mailbox),
  };
}

/**
 * Runs `fn` (a publish of the mailbox's log up to its end: the follower's,
 * a seed's) under the mailbox's log lock, which orders its reads against
 * the log's writers: nothing is appended or expunged between the state it
 * reads and the bodies it ships. Not under mdbox's map lock, which a
 * commit that changes messages holds too: that lock is storage-wide, and
 * the publish's JetStream round trip would hold up every other process's
 * save, copy and expunge in any mailbox. The map lock keeps a purge from
 * moving bodies, and the publish needs no such promise, as a fetch does
 * not: a message of the state is referenced by this mailbox (its expunge
 * needs the log lock held here), so a purge keeps its body, perhaps in
 * another m.N, and a read that misses it there reads the map again (the
 * mdbox driver's readStored). A move changes no byte of a body: what is
 * shipped is the same whether a purge ran before, during or after.
 */
function underLogLock<T>(mailbox: Mailbox, fn: (state: IndexMapState) => Promise<T>): Promise<T> {
  return mailbox.withLogLock(fn, { changesMessages: false });
}

/** Publishes the mailbox's log up to `committed.end`; the subject's first look checks whose it is (a new mailbox's GUID is known only now, or no precheck ran). */
async function publishLogEnd(publisher: Publisher, mailbox: Mailbox, committed: Pick<CommittedRange, "end" | "state"> & Partial<Pick<CommittedRange, "storageLog" | "releaseStorageLock">>): Promise<void> {
  if (!publisher.knows(publisher.subjectOf(mailbox))) await publisher.verifyCursor(mailbox);
  await publisher.publishCommit(mailbox, committed);
}
