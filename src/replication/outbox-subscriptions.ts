/**
 * `local` mode's record of unpublished subscription changes: one empty
 * file, `subscriptions.pending` in the outbox directory, created and
 * fsynced (with its directory) by the first change after the last drain,
 * before the subscribe or unsubscribe returns; removed once the list has
 * been published. The file holds nothing because the message is the
 * storage's whole list read at drain time (Publisher.publishSubscriptions):
 * any number of changes, a killed process's among them, go out as one list.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Storage } from "../api/storage.js";
import { openCreating } from "../shared/file-mode.js";
import { fsyncDir } from "../shared/fsync-dir.js";
import type { Publisher } from "./publisher.js";

const FILE = "subscriptions.pending";

export class PendingSubscriptions {
  private readonly file: string;
  /** Counts changes marked in this process: a drain that started before the last mark leaves the file. */
  private generation = 0;

  /** Picks up what a killed process left in `dir`. */
  constructor(dir: string) {
    this.file = path.join(dir, FILE);
    if (fs.existsSync(this.file)) this.generation = 1;
  }

  get pending(): boolean {
    return this.generation > 0;
  }

  /** Durable before it returns: a change not published yet. */
  mark(): void {
    if (this.generation === 0) {
      fs.closeSync(openCreating(this.file, fs.constants.O_WRONLY));
      fsyncDir(path.dirname(this.file));
    }
    this.generation++;
  }

  /**
   * Publishes the storage's list when a change is pending, fenced as in
   * replicated mode; forgets the mark unless another change came meanwhile.
   * @throws ReplicationFencedError, ReplicationError as Publisher.publishSubscriptions.
   */
  async drain(publisher: Publisher, storage: Storage): Promise<void> {
    if (this.generation === 0) return;
    const generation = this.generation;
    await publisher.verifySubscriptionsSubject(storage);
    await publisher.publishSubscriptions(storage);
    if (this.generation !== generation) return; // marked meanwhile: the next round publishes it
    fs.rmSync(this.file, { force: true });
    this.generation = 0;
  }
}
