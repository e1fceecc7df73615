/**
 * `local` commit mode: `commit()` returns once the local log has the
 * transaction and the mailbox is marked dirty in a durable outbox; a
 * background drain publishes it. The log itself holds what is to be sent
 * (its exact bytes), so the outbox only names what is pending, per subject
 * (the mailbox GUID, which survives a rename: a marker by name would lose
 * a renamed mailbox's commits): one file `<subject-guid>.outbox` of JSON
 * lines, created and fsynced (with its directory) at the mailbox's first
 * unpublished commit, with a line per mailbox create, rename and delete
 * (fsynced before the call returns) and one per tree op published; removed
 * once the stream has everything up to the log's end. A rename's line
 * keeps where the log stood at the rename: the commits before it are
 * published under the old name, then the rename, then the later commits,
 * as replicated mode orders them. A process killed with anything
 * unpublished leaves the files; the next one to attach the outbox
 * publishes them (`attach`). Subscription changes are marked by a file of
 * their own (outbox-subscriptions.ts) and drained after the mailboxes.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { CommitHooks, Mailbox } from "../api/mailbox.js";
import type { MailboxTreeChange, MailboxTreeHooks, Storage, StorageHooks } from "../api/storage.js";
import { readLog } from "../log/view.js";
import type { LogPosition } from "../log/types.js";
import { ReplicationError, ReplicationFencedError } from "../shared/errors.js";
import { openCreating } from "../shared/file-mode.js";
import { fsyncDir } from "../shared/fsync-dir.js";
import { makeDirs } from "../shared/make-dirs.js";
import { mailboxSubject } from "./subjects.js";
import { LogFollower } from "./follow.js";
import { PendingSubscriptions } from "./outbox-subscriptions.js";
import { lastOnSubject, OwnPublishLanded, publishTreeOp, replicatedStorageHooks, treeOpOf, type Publisher, type TreeOp } from "./publisher.js";

/** Log bytes per stream message while draining a backlog (JetStream's message limit is 1 MiB, bodies travel too). */
const DRAIN_MAX_LOG_BYTES = 256 * 1024;
/** How long a commit waits for company before the drain starts. */
const DRAIN_DELAY_MS = 5;
const SUFFIX = ".outbox";
/** An earlier version's marker: an empty file named by the mailbox name in hex. */
const NAME_MARKER_SUFFIX = ".dirty";

export interface OutboxStatus {
  /** Mailboxes with commits, creates, renames or deletes not published yet (a deleted one by its last name). */
  dirty: string[];
  /** Whether a subscribe or unsubscribe is not published yet. */
  subscriptions: boolean;
  /** The error that stopped draining (fenced, or the stream unreachable at the last try). */
  error: Error | undefined;
}

/** A create, rename or delete waiting in the outbox; `at`: a rename's or delete's log end at the change. */
interface PendingOp {
  op: TreeOp;
  at?: LogPosition;
}

/** One line of a subject's outbox file. */
type OutboxLine =
  | { t: "commit"; name: string }
  | { t: "op"; change: MailboxTreeChange; subjectGuid: string; end?: LogPosition; modseq?: string; at?: LogPosition }
  | { t: "done"; n: number };

/** What is pending for one subject. */
interface Pending {
  /** The mailbox's name now; undefined once deleted. */
  name: string | undefined;
  ops: PendingOp[];
  /** How many of `ops` are published. */
  done: number;
  /** Counts what was marked: a drain that started before the last mark leaves the file. */
  generation: number;
}

export class Outbox {
  private storage: Storage | undefined;
  /** By subject GUID. */
  private readonly pending = new Map<string, Pending>();
  private draining: Promise<void> | undefined;
  private again = false;
  private failure: Error | undefined;
  private retry: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private closed = false;
  /** Open mailboxes by subject GUID. */
  private readonly boxes = new Map<string, Mailbox>();
  /** A rename's or delete's log end, from before the change to after it. */
  private readonly logEnds = new WeakMap<MailboxTreeChange, LogPosition>();
  private readonly subscriptions: PendingSubscriptions;

  /**
   * What other programs append to the logs of mailboxes open here is marked
   * as this process's commits are (follow.ts); none with followExternal
   * false.
   */
  private readonly follower: LogFollower | undefined;
  /** The log end of each mailbox's last commit marked. */
  private readonly markedEnds = new WeakMap<Mailbox, LogPosition>();

  /**
   * `options.followExternal` (default true): follow each mailbox from its
   * open or commit to its close, as ReplicatedHooksOptions.followExternal.
   * A process that ends with one command needs none: its commits' marks
   * cover the log up to its end, others' appends included.
   */
  constructor(private readonly publisher: Publisher, readonly dir: string, options: { followExternal?: boolean } = {}) {
    makeDirs(dir);
    this.subscriptions = new PendingSubscriptions(dir);
    this.follower = options.followExternal === false ? undefined : new LogFollower({
      // A commit's own mark covers its log: a drain after it publishes up to the log's end then.
      has: async (mailbox, end) => {
        const marked = this.markedEnds.get(mailbox);
        return (marked !== undefined && !isBefore(marked, end)) || publisher.has(mailbox, end);
      },
      publishNoticed: async (mailbox) => {
        this.markCommit(mailbox);
        this.kick();
      },
      // The drain reports its own errors (status().error); marking fails only as a commit's would.
      onError: (err) => (this.failure = err),
    });
  }

  /** Hooks for the storage's `commitHooks` (local mode). */
  get hooks(): CommitHooks {
    return {
      beforeCommit: async () => this.publisher.checkNotFenced(),
      afterCommit: async (mailbox, committed) => {
        this.markCommit(mailbox);
        this.markedEnds.set(mailbox, committed.end);
        this.kick();
        this.follower?.follow(mailbox);
      },
      afterOpen: async (mailbox) => this.follower?.follow(mailbox),
      beforeClose: async (mailbox) => this.follower?.unfollow(mailbox),
    };
  }

  /**
   * Hooks for the storage's `mailboxTreeHooks` (local mode): a create,
   * rename or delete is in the outbox, durably, before the call returns,
   * and published in order with the mailbox's commits. A fenced writer
   * renames and deletes nothing; its create stays local (the call fails).
   */
  get treeHooks(): MailboxTreeHooks {
    return {
      beforeMailboxChange: async (change, mailbox) => {
        this.publisher.checkNotFenced();
        this.logEnds.set(change, mailbox.position);
      },
      afterMailboxChange: async (change, mailbox) => {
        this.publisher.checkNotFenced();
        const op = treeOpOf(this.publisher, change, mailbox);
        if (change.type !== "create") this.publisher.mailboxMoved(change.mailbox.name, change.type === "rename" ? change.to : undefined);
        if (op === undefined) return;
        this.markOp({ op, at: this.logEnds.get(change) });
        this.kick();
      },
    };
  }

  /**
   * Hooks for the storage's `storageHooks` (local mode): a purge or altmove
   * is published as in `replicated` mode (replicatedStorageHooks), once the
   * outbox is drained. Why not through the outbox: they are rare
   * maintenance, and the drain is per mailbox subject, in no order with a
   * storage subject, so a purge could reach replicas before the expunges it
   * reclaims. Draining first keeps the stream's order; the price is that
   * they need the stream: while it is unreachable they fail before
   * anything is changed.
   *
   * A subscribe or unsubscribe is a local-mode write: it returns once the
   * file is written and the change marked durably, and the drain publishes
   * the list. Nothing orders it with mail, so nothing needs draining first.
   * A fenced writer changes nothing; one fenced at the drain keeps its
   * local change, as a commit does.
   */
  get storageHooks(): StorageHooks {
    const direct = replicatedStorageHooks(this.publisher);
    return {
      beforeStorageChange: async (change, storage) => {
        if (change.type === "subscription") {
          this.publisher.checkNotFenced();
          return;
        }
        await this.flush();
        await direct.beforeStorageChange!(change, storage);
      },
      afterStorageChange: async (change, storageLog, storage) => {
        if (change.type !== "subscription") return direct.afterStorageChange!(change, storageLog, storage);
        this.subscriptions.mark();
        this.kick();
      },
    };
  }

  /** Starts draining what is pending (what a killed process left too). */
  async attach(storage: Storage): Promise<void> {
    this.storage = storage;
    for (const file of fs.readdirSync(this.dir)) {
      if (file.endsWith(SUFFIX)) this.load(file.slice(0, -SUFFIX.length));
      else if (file.endsWith(NAME_MARKER_SUFFIX)) await this.adoptNameMarker(file);
    }
    this.kick();
  }

  status(): OutboxStatus {
    const names: string[] = [];
    for (const p of this.pending.values()) {
      const name = p.name ?? (p.ops.length > 0 ? p.ops[p.ops.length - 1].op.change.mailbox.name : undefined);
      if (name !== undefined) names.push(name);
    }
    return { dirty: names, subscriptions: this.subscriptions.pending, error: this.failure };
  }

  /**
   * Resolves once everything pending is published.
   * @throws the error that stops draining (ReplicationFencedError), or ReplicationError after `timeoutMs`.
   */
  async flush(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.pending.size > 0 || this.subscriptions.pending || this.draining) {
      if (this.failure instanceof ReplicationFencedError) throw this.failure;
      if (Date.now() > deadline) throw new ReplicationError(`outbox still has ${[...this.status().dirty, ...(this.subscriptions.pending ? ["(subscriptions)"] : [])].join(", ")} after ${timeoutMs} ms: ${this.failure?.message ?? ""}`, { path: this.dir });
      this.drainNow();
      await (this.draining ?? new Promise((r) => setTimeout(r, 20)));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.follower?.stop();
    clearTimeout(this.retry);
    clearTimeout(this.soon);
    await this.draining;
    for (const box of this.boxes.values()) await box.close();
    this.boxes.clear();
  }

  private fileOf(subjectGuid: string): string {
    return path.join(this.dir, subjectGuid + SUFFIX);
  }

  /** Appends `line` to the subject's file, fsynced (and its directory, when the file is new) before it returns. */
  private append(subjectGuid: string, line: OutboxLine): void {
    const file = this.fileOf(subjectGuid);
    const isNew = !fs.existsSync(file);
    const fd = openCreating(file, fs.constants.O_WRONLY | fs.constants.O_APPEND);
    try {
      fs.writeSync(fd, JSON.stringify(line) + "\n");
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (isNew) fsyncDir(this.dir);
  }

  /** Durable before commit() returns: the first unpublished commit of a subject creates its file. */
  private markCommit(mailbox: Mailbox): void {
    const key = this.publisher.subjectGuidFor(mailbox);
    const known = this.pending.get(key);
    if (known) {
      known.generation++;
      return;
    }
    this.append(key, { t: "commit", name: mailbox.name });
    this.pending.set(key, { name: mailbox.name, ops: [], done: 0, generation: 1 });
  }

  private markOp(pending: PendingOp): void {
    const { op, at } = pending;
    const key = op.subjectGuid;
    this.append(key, { t: "op", change: op.change, subjectGuid: key, end: op.end, modseq: op.modseq?.toString(), at });
    const p = this.pending.get(key) ?? { name: undefined, ops: [], done: 0, generation: 0 };
    p.ops.push(pending);
    p.name = nameAfter(op.change);
    p.generation++;
    this.pending.set(key, p);
  }

  /** Reads a subject's file as a killed process left it (a torn last line was never acknowledged). */
  private load(subjectGuid: string): void {
    const lines = fs.readFileSync(this.fileOf(subjectGuid), "utf8").split("\n").filter((l) => l !== "");
    const p: Pending = { name: undefined, ops: [], done: 0, generation: 1 };
    lines.forEach((text, i) => {
      let line: OutboxLine;
      try {
        line = JSON.parse(text) as OutboxLine;
      } catch (err) {
        if (err instanceof SyntaxError && i === lines.length - 1) return;
        throw err;
      }
      if (line.t === "commit") p.name = line.name;
      else if (line.t === "done") p.done = line.n;
      else {
        const op: TreeOp = { change: line.change, subjectGuid: line.subjectGuid, end: line.end, modseq: line.modseq === undefined ? undefined : BigInt(line.modseq) };
        p.ops.push({ op, at: line.at });
        p.name = nameAfter(line.change);
      }
    });
    this.pending.set(subjectGuid, p);
  }

  /** An earlier version's marker (by name, for commits only): its mailbox gets a file of this version's. */
  private async adoptNameMarker(file: string): Promise<void> {
    const name = Buffer.from(file.slice(0, -NAME_MARKER_SUFFIX.length), "hex").toString("utf8");
    if (await this.storage!.backend.mailboxExists(name)) {
      const box = await this.storage!.openMailbox(name);
      try {
        this.markCommit(box);
      } finally {
        await box.close();
      }
    }
    fs.rmSync(path.join(this.dir, file), { force: true });
  }

  /** Drains soon (within DRAIN_DELAY_MS), so that a burst of commits goes out in few messages. */
  private kick(): void {
    if (this.closed || !this.storage || this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      this.drainNow();
    }, DRAIN_DELAY_MS);
  }

  private drainNow(): void {
    if (this.closed || !this.storage) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = this.drainAll().finally(() => {
      this.draining = undefined;
      if (this.again && !this.closed) {
        this.again = false;
        this.drainNow();
      }
    });
  }

  private async drainAll(): Promise<void> {
    const rounds: Array<[key: string | undefined, drain: () => Promise<void>]> = [...this.pending].map(([key, p]) => [key, () => this.drainOne(key, p)]);
    rounds.push([undefined, () => this.subscriptions.drain(this.publisher, this.storage!)]);
    for (const [key, drain] of rounds) {
      try {
        await drain();
        this.failure = undefined;
      } catch (err) {
        this.failure = err as Error;
        // The next round opens the mailbox afresh (this one may have been closed with its storage, or renamed).
        if (key !== undefined) await this.closeBox(key);
        if (err instanceof ReplicationFencedError) return;
        // The stream is unreachable (an election, a partition): try again shortly; the file stays.
        clearTimeout(this.retry);
        this.retry = setTimeout(() => this.kick(), 250);
        this.retry.unref();
        return;
      }
    }
  }

  private async drainOne(key: string, p: Pending): Promise<void> {
    this.publisher.checkNotFenced();
    const subject = mailboxSubject(this.publisher.conn.names, this.publisher.storageId, key);
    let box = p.name === undefined ? undefined : await this.boxOf(key, p.name);
    if (p.name !== undefined && box === undefined) box = await this.adoptUnnotedChange(key, p, subject);
    const generation = p.generation;
    if (box) {
      await box.refresh();
      await this.publisher.verifySubject(subject, box.guid()!, box.position);
    } else {
      await this.closeBox(key);
    }
    while (p.done < p.ops.length) {
      const { op, at } = p.ops[p.done];
      // The commits before a rename or delete go first, under the name they were made under (a deleted mailbox's log is gone: a replica skips them anyway).
      if (box && at) await this.publishLog(box, subject, at, op.change.mailbox.name);
      await publishTreeOp(this.publisher, op);
      p.done++;
      this.append(key, { t: "done", n: p.done });
    }
    if (box) {
      const cursor = await this.publisher.cursor(subject);
      if (cursor.mailbox !== undefined && cursor.mailbox !== box.name && cursor.op?.type !== "delete") {
        // Replicas know the mailbox by another name: a rename with no line (see adoptUnnotedChange). The
        // commits go under that name, then the rename: a replica ends with the mailbox as it is here.
        await this.publishLog(box, subject, box.position, cursor.mailbox);
        const change: MailboxTreeChange = { type: "rename", mailbox: { name: cursor.mailbox, guid: box.guid(), uidValidity: box.uidValidity }, to: box.name };
        await publishTreeOp(this.publisher, { change, subjectGuid: key });
      }
      await this.publishLog(box, subject, box.position, box.name);
    }
    if (p.generation !== generation) return; // marked meanwhile: the next round publishes it
    this.pending.delete(key);
    fs.rmSync(this.fileOf(key), { force: true });
  }

  /**
   * A process killed between a local rename or delete and its outbox line
   * leaves the subject's entry under a name that is gone: the mailbox is
   * looked for by its subject GUID. Found under another name, the entry
   * follows it (drainOne publishes the rename); found nowhere, it was
   * deleted, and the delete is noted as if the line had been written (the
   * stream's last message gives the name and UIDVALIDITY replicas know).
   * @returns the mailbox, open, when found.
   * @throws ReplicationError when it is not found and the subject is not
   *   named by a mailbox of this store (a promoted store's): nothing is published.
   */
  private async adoptUnnotedChange(key: string, p: Pending, subject: string): Promise<Mailbox | undefined> {
    // A promoted store's mailbox is on a subject of the old primary's: its own GUID is the last writer's.
    // Not the cached cursor: the writer's first look at a subject (verifySubject) checks whose it is.
    const last = await lastOnSubject(this.publisher.conn, subject);
    for (const name of await this.storage!.listMailboxes()) {
      const box = await this.boxOf(key, name, last.writerGuid);
      if (box === undefined) continue;
      this.publisher.mailboxMoved(p.name!, name);
      p.name = name;
      return box;
    }
    if (last.writerGuid !== undefined && last.writerGuid !== key) {
      // Not a subject this store's mailbox names: whether it is gone here or was never this store's, nothing tells.
      throw new ReplicationError(`mailbox ${p.name} of ${subject} is not in the store (last published by mailbox GUID ${last.writerGuid}): nothing published`, { path: this.fileOf(key) });
    }
    const change: MailboxTreeChange = { type: "delete", mailbox: { name: last.mailbox ?? p.name!, guid: last.writerGuid ?? key, uidValidity: last.uidValidity ?? 0 } };
    this.markOp({ op: { change, subjectGuid: key } });
    return undefined;
  }

  /** Publishes the mailbox's log past the subject's cursor up to `upTo`, in messages of at most DRAIN_MAX_LOG_BYTES, as mailbox `name`. */
  private async publishLog(box: Mailbox, subject: string, upTo: LogPosition, name: string): Promise<void> {
    for (;;) {
      const cursor = await this.publisher.cursor(subject);
      // A subject whose log does not reach back to the mailbox's creation starts with a seed: of the state the drain
      // has (one snapshot with its position, past `upTo`, so the commits up to there are in it); the cursor moves there.
      const seed = cursor.end === undefined && this.publisher.needsSeed(box, box.position, box.state);
      const from = this.publisher.fromOf(upTo, cursor);
      if (!seed && !isBefore(from, upTo)) return;
      try {
        if (seed) await this.publisher.publishSeed(box, subject, box.position, box.state, cursor, name);
        else await this.publisher.publish(subject, await this.publisher.build(box, { end: chunkEnd(box.indexPrefix, from, upTo), state: box.state }, cursor, name), cursor);
      } catch (err) {
        // An earlier publish of ours was stored late: the cursor moved to it; go on from there.
        if (!(err instanceof OwnPublishLanded)) throw err;
      }
    }
  }

  /**
   * The subject's mailbox, open, when it is mailbox `name` (one opened under
   * an older name is closed); undefined when `name` is not there, has no
   * index, or is another mailbox. It is the subject's mailbox when its own
   * GUID names the subject, or is the subject's last writer (a promoted
   * store's mailbox), or (the subject without messages) when the
   * publisher's names say so.
   */
  private async boxOf(key: string, name: string, writerGuid?: string): Promise<Mailbox | undefined> {
    const open = this.boxes.get(key);
    if (open?.name === name) return open;
    await this.closeBox(key);
    if (!(await this.storage!.hasIndex(name))) return undefined;
    const box = await this.storage!.openMailbox(name);
    const own = box.guid();
    if (own !== key && (writerGuid === undefined ? this.publisher.subjectGuidOf(name) !== key : own !== writerGuid)) {
      await box.close();
      return undefined;
    }
    this.boxes.set(key, box);
    return box;
  }

  private async closeBox(key: string): Promise<void> {
    const box = this.boxes.get(key);
    this.boxes.delete(key);
    await box?.close();
  }
}

/** The mailbox's name after `change` (undefined: deleted). */
function nameAfter(change: MailboxTreeChange): string | undefined {
  return change.type === "rename" ? change.to : change.type === "delete" ? undefined : change.mailbox.name;
}

/** The end of the last transaction after `from` within DRAIN_MAX_LOG_BYTES (at least one), at most `to`. */
function chunkEnd(prefix: string, from: LogPosition, to: LogPosition): LogPosition {
  if (to.fileSeq === from.fileSeq && to.offset - from.offset <= DRAIN_MAX_LOG_BYTES) return to;
  let end: LogPosition | undefined;
  for (const tx of readLog(prefix, from.offset === 0 ? undefined : from).transactions) {
    if (isBefore(tx.position, from)) continue;
    if (end && (tx.end.fileSeq !== from.fileSeq || tx.end.offset - from.offset > DRAIN_MAX_LOG_BYTES)) break;
    end = tx.end;
    if (!isBefore(end, to)) break;
  }
  return end ?? to;
}

function isBefore(a: LogPosition, b: LogPosition): boolean {
  return a.fileSeq < b.fileSeq || (a.fileSeq === b.fileSeq && a.offset < b.offset);
}
