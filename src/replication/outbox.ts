/**
 * `local` commit mode: `commit()` returns once the local log has the
 * transaction and the mailbox is marked dirty in a durable outbox; a
 * background drain publishes it. The log itself holds what is to be sent
 * (its exact bytes), so the outbox only names the mailboxes with
 * unpublished commits: one empty marker file per mailbox, created and
 * fsynced (with its directory) at the mailbox's first unpublished commit
 * and removed once the stream has everything up to the log's end. A
 * process killed with commits unpublished leaves the markers; the next one
 * to attach the outbox publishes them (`attach`).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { CommitHooks, Mailbox } from "../api/mailbox.js";
import type { Storage } from "../api/storage.js";
import { readLog } from "../log/view.js";
import type { LogPosition } from "../log/types.js";
import { ReplicationError, ReplicationFencedError } from "../shared/errors.js";
import { createNewFile } from "../shared/file-mode.js";
import { fsyncDir } from "../shared/fsync-dir.js";
import { makeDirs } from "../shared/make-dirs.js";
import { OwnPublishLanded, type Publisher } from "./publisher.js";

/** Log bytes per stream message while draining a backlog (JetStream's message limit is 1 MiB, bodies travel too). */
const DRAIN_MAX_LOG_BYTES = 256 * 1024;
/** How long a commit waits for company before the drain starts. */
const DRAIN_DELAY_MS = 5;

export interface OutboxStatus {
  /** Mailboxes with commits not published yet. */
  dirty: string[];
  /** The error that stopped draining (fenced, or the stream unreachable at the last try). */
  error: Error | undefined;
}

export class Outbox {
  private storage: Storage | undefined;
  private readonly dirty = new Set<string>();
  private readonly generation = new Map<string, number>();
  private draining: Promise<void> | undefined;
  private again = false;
  private failure: Error | undefined;
  private retry: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly boxes = new Map<string, Mailbox>();

  constructor(private readonly publisher: Publisher, readonly dir: string) {
    makeDirs(dir);
  }

  /** Hooks for the storage's `commitHooks` (local mode). */
  get hooks(): CommitHooks {
    return {
      beforeCommit: async () => this.publisher.checkNotFenced(),
      afterCommit: async (mailbox) => {
        this.markDirty(mailbox.name);
        this.kick();
      },
    };
  }

  /** Starts draining `storage`'s marked mailboxes (those a killed process left too). */
  async attach(storage: Storage): Promise<void> {
    this.storage = storage;
    for (const file of fs.readdirSync(this.dir)) {
      if (!file.endsWith(".dirty")) continue;
      this.dirty.add(Buffer.from(file.slice(0, -".dirty".length), "hex").toString("utf8"));
    }
    this.kick();
  }

  status(): OutboxStatus {
    return { dirty: [...this.dirty], error: this.failure };
  }

  /**
   * Resolves once every marked mailbox is published.
   * @throws the error that stops draining (ReplicationFencedError), or ReplicationError after `timeoutMs`.
   */
  async flush(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.dirty.size > 0 || this.draining) {
      if (this.failure instanceof ReplicationFencedError) throw this.failure;
      if (Date.now() > deadline) throw new ReplicationError(`outbox still has ${[...this.dirty].join(", ")} after ${timeoutMs} ms: ${this.failure?.message ?? ""}`, { path: this.dir });
      this.drainNow();
      await (this.draining ?? new Promise((r) => setTimeout(r, 20)));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    clearTimeout(this.soon);
    await this.draining;
    for (const box of this.boxes.values()) await box.close();
    this.boxes.clear();
  }

  private markerOf(name: string): string {
    return path.join(this.dir, Buffer.from(name, "utf8").toString("hex") + ".dirty");
  }

  /** Durable before commit() returns: the marker and its directory entry are fsynced. */
  private markDirty(name: string): void {
    this.generation.set(name, (this.generation.get(name) ?? 0) + 1);
    if (this.dirty.has(name) && fs.existsSync(this.markerOf(name))) return;
    this.dirty.add(name);
    let fd: number;
    try {
      fd = createNewFile(this.markerOf(name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return;
      throw err;
    }
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fsyncDir(this.dir);
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
    for (const name of [...this.dirty]) {
      try {
        await this.drainOne(name);
        this.failure = undefined;
      } catch (err) {
        this.failure = err as Error;
        // The next round opens the mailbox afresh (this one may have been closed with its storage).
        this.boxes.delete(name);
        if (err instanceof ReplicationFencedError) return;
        // The stream is unreachable (an election, a partition): try again shortly; the marker stays.
        clearTimeout(this.retry);
        this.retry = setTimeout(() => this.kick(), 250);
        this.retry.unref();
        return;
      }
    }
  }

  private async drainOne(name: string): Promise<void> {
    const generation = this.generation.get(name) ?? 0;
    let box = this.boxes.get(name);
    if (!box) {
      box = await this.storage!.openMailbox(name);
      this.boxes.set(name, box);
    }
    await box.refresh();
    await this.publisher.verifyCursor(box);
    const subject = this.publisher.subjectOf(box);
    for (;;) {
      const cursor = await this.publisher.cursor(subject);
      const from = this.publisher.fromOf(box.position, cursor);
      if (!isBefore(from, box.position)) break;
      const end = chunkEnd(box.indexPrefix, from, box.position);
      try {
        await this.publisher.publish(subject, await this.publisher.build(box, { end, state: box.state }, cursor), cursor);
      } catch (err) {
        // An earlier publish of ours was stored late: the cursor moved to it; go on from there.
        if (!(err instanceof OwnPublishLanded)) throw err;
      }
    }
    if ((this.generation.get(name) ?? 0) !== generation) return; // committed meanwhile: the next round publishes it
    this.dirty.delete(name);
    fs.rmSync(this.markerOf(name), { force: true });
  }
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
