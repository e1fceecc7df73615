/**
 * Where new message data goes (dbox.md §4.3), for saves and for purge:
 *
 * 1. a file this session already writes to, while `size + mail ≤ rotate`;
 * 2. else one of the files of the last 10 distinct file ids in the map
 *    (newest first) with `end + mail < rotate`, in the wanted storage
 *    (primary or ALT), lockable, and ending where the map says;
 * 3. else a new temp file, named `m.<highest_file_id + 1>` … under the map
 *    lock by publish().
 *
 * The session keeps every file it appends to flock()ed until release(), so
 * the bytes it wrote cannot be purged away before the map points at them.
 */
import { MdboxPaths } from "./paths.js";
import { AppendTarget } from "./append-target.js";
import { mdboxHasRoom, MDBOX_ROTATE_SIZE_DEFAULT } from "../dbox/rotation.js";
import { dboxMessageSize, writeDboxMessage, type DboxMessageInput } from "../dbox/file-format.js";
import { DBOX_MSG_HEADER_SIZE } from "../dbox/file-header.js";
import { writeDboxMessageHeader } from "../dbox/message-header.js";
import type { FileEnd } from "../../projections/mdbox-map-view.js";
import { assert } from "../../shared/errors.js";
import { fsyncDir, fsyncDirOnPool } from "../../shared/fsync-dir.js";
import { allEnded } from "../../shared/all-ended.js";
import { outcomeOf, valueOf, type Outcome } from "../../shared/outcome.js";

/** Dovecot looks at most this many distinct files when looking for one to append to. */
export const MAX_CANDIDATE_FILES = 10;

/** Options of an AppendSession. */
export interface AppendSessionOptions {
  /** mdbox_rotate_size (default 10 MiB). */
  rotateSizeBytes?: number;
  /** fdatasync data before the map records it (default true). */
  sync?: boolean;
  /** Never append to these files (purge: the files being purged). */
  excludeFileIds?: ReadonlySet<number>;
  /**
   * publish() starts the directory sync without waiting for it, and
   * syncPublishedNames() waits (purge: the files it copies from still hold
   * every message until it deletes them, so the new names need to be
   * durable before those unlinks, not before the map commit; the sync
   * overlaps the map log's).
   */
  deferDirSync?: boolean;
}

/** Where one message was put; resolve() gives its map record after publish(). */
export interface Placement {
  readonly target: AppendTarget;
  readonly offset: number;
  readonly size: number;
}

/** One save or purge writing new message data: places messages, writes them, names new files, then commits or takes it all back. */
export class AppendSession {
  private readonly targets: AppendTarget[] = [];
  private readonly tried = new Set<number>();
  private candidates: readonly FileEnd[] | undefined;
  private committed = false;
  /** publish() named a new file: the map's highest_file_id of that transaction counts it. */
  private named = false;
  /** Messages placed so far (a save stage's retry needs to know that all of them are its own). */
  private placedCount = 0;
  /** The directory sync publish() started (deferDirSync), as an outcome: nobody may be waiting for it yet. */
  private dirSync: Promise<Outcome<unknown>> | undefined;

  constructor(private readonly paths: MdboxPaths, private readonly options: AppendSessionOptions = {}) {}

  private get rotate(): number {
    return this.options.rotateSizeBytes ?? MDBOX_ROTATE_SIZE_DEFAULT;
  }

  /**
   * Places one encoded message record (30-byte header + body + metadata).
   * `bodySize` is what the rotation rule counts. `recentFiles` gives the
   * map's last files as the caller last read it (the candidates for step 2,
   * asked once per session).
   */
  add(record: Uint8Array, bodySize: number, recentFiles: () => readonly FileEnd[], alt = false): Placement {
    // Copied as it is, without a closure: a purge adds thousands, with cold code.
    const target = this.place(bodySize, recentFiles, alt);
    return { target, offset: target.queue(record), size: record.length };
  }

  /**
   * Like add(), for a message of a file whose message headers are
   * `headerSize` bytes, not the 30 this engine's and Dovecot 2.3's files
   * use: written with a fresh 30-byte header, then its body and metadata
   * as they are: copied as it was, the longer header would be read as body
   * in the new file.
   */
  addReheadered(record: Uint8Array, headerSize: number, bodySize: number, recentFiles: () => readonly FileEnd[], alt = false): Placement {
    const size = record.length - headerSize + DBOX_MSG_HEADER_SIZE;
    const target = this.place(bodySize, recentFiles, alt);
    const offset = target.queueEncoded(size, (out, at) => {
      writeDboxMessageHeader(out, at, bodySize);
      out.set(record.subarray(headerSize), at + DBOX_MSG_HEADER_SIZE);
    });
    return { target, offset, size };
  }

  /** Like add(), for a message not encoded yet: it is encoded straight into the file's staging buffer. */
  addMessage(message: DboxMessageInput, recentFiles: () => readonly FileEnd[], alt = false): Placement {
    const size = dboxMessageSize(message.body.length, message.metadata);
    const target = this.place(message.body.length, recentFiles, alt);
    return { target, offset: target.queueEncoded(size, (out, at) => writeDboxMessage(out, at, message)), size };
  }

  /**
   * The file the next message goes to, without a promise: a purge or a save
   * stage places thousands, and an await each (async hooks are on inside a
   * storage change) was a tenth of a purge's CPU. Opening files and writing
   * full staging buffers are synchronous (see append-target.ts).
   */
  private place(bodySize: number, recentFiles: () => readonly FileEnd[], alt: boolean): AppendTarget {
    const target = this.targetWithRoom(bodySize, alt) ?? this.nextTarget(bodySize, recentFiles, alt);
    target.appended = true;
    this.placedCount++;
    return target;
  }

  /**
   * Starts what Dovecot would do in a transaction of its own (purge: one
   * per file): the files written so far take more mail under the rule for
   * files of earlier transactions, `size + mail < rotate`.
   */
  beginTransaction(): void {
    for (const t of this.targets) t.appended = false;
  }

  /** Step 1: a file this session already writes to, with room. */
  private targetWithRoom(bodySize: number, alt: boolean): AppendTarget | undefined {
    // By index: an iterator per message placed was garbage (a purge places thousands).
    for (let i = 0; i < this.targets.length; i++) {
      const t = this.targets[i];
      if (t.alt === alt && mdboxHasRoom(t.size, bodySize, this.rotate, t.appended)) return t;
    }
    return undefined;
  }

  /** Steps 2 and 3: an existing file of the map with room, else a new one. */
  private nextTarget(bodySize: number, recentFiles: () => readonly FileEnd[], alt: boolean): AppendTarget {
    const candidate = bodySize < this.rotate ? this.openCandidate(bodySize, recentFiles, alt) : undefined;
    if (candidate !== undefined) return candidate;
    this.paths.ensureDirs(alt);
    const target = AppendTarget.createNew(alt ? this.paths.altStorageDir! : this.paths.storageDir, alt);
    this.targets.push(target);
    return target;
  }

  /**
   * Writes everything queued (data first: the map must never point at bytes
   * not on disk), all files at once so that their fdatasyncs overlap (a
   * purge's copies often go to an existing file and a new one).
   */
  async flush(): Promise<void> {
    // Every write has ended before a failure is thrown: release() must not roll a file back under a write.
    await allEnded(this.targets.map((t) => t.flush(this.options.sync ?? true)));
  }

  /** True when publish() has new files to name. */
  get hasNewFiles(): boolean {
    return this.targets.some((t) => t.kind === "new" && t.fileId === 0);
  }

  /**
   * Gives new files their names, `m.<highestFileId + 1>` upwards, skipping an
   * id whose file exists in either storage (an orphan of a crash). Call under
   * the map lock, just before the map transaction that records them.
   * @returns the new highest_file_id (unchanged when nothing was new).
   */
  async publish(highestFileId: number): Promise<number> {
    let highest = highestFileId;
    let published = false;
    for (const t of this.targets) {
      if (t.kind !== "new" || t.fileId !== 0) continue;
      for (;;) {
        const id = ++highest;
        if (this.paths.locate(id) !== undefined) continue;
        if (t.publish(this.paths.filePath(id, t.alt), id)) break;
      }
      published = true;
    }
    this.named ||= published;
    if (published && this.syncs) {
      if (!this.options.deferDirSync) for (const dir of this.publishedDirs()) fsyncDir(dir);
      else this.dirSync = outcomeOf(allEnded(this.publishedDirs().map(fsyncDirOnPool)));
    }
    return highest;
  }

  /** How many messages were placed in this session. */
  get placed(): number {
    return this.placedCount;
  }

  /** publish() gave a new file its name (the session's data can no longer go into another map transaction). */
  get published(): boolean {
    return this.named;
  }

  /** The ids publish() gave to new files. */
  publishedFileIds(): number[] {
    return this.targets.filter((t) => t.kind === "new" && t.fileId !== 0).map((t) => t.fileId);
  }

  /** deferDirSync: waits until the names publish() gave are durable (the sync of their directories it started). */
  async syncPublishedNames(): Promise<void> {
    if (this.dirSync !== undefined) await valueOf(this.dirSync);
  }

  private get syncs(): boolean {
    return this.options.sync ?? true;
  }

  /** The storage directories that publish() named files in. */
  private publishedDirs(): string[] {
    const named = this.targets.filter((t) => t.kind === "new" && t.fileId !== 0);
    const dirs: string[] = [];
    if (named.some((t) => !t.alt)) dirs.push(this.paths.storageDir);
    if (named.some((t) => t.alt)) dirs.push(this.paths.altStorageDir!);
    return dirs;
  }

  /** The map record of a placed message (after publish()). */
  resolve(p: Placement): { fileId: number; offset: number; size: number } {
    assert(p.target.fileId !== 0, "placement resolved before publish()");
    return { fileId: p.target.fileId, offset: p.offset, size: p.size };
  }

  /** The map transaction landed: rollback() must no longer touch the data. */
  markCommitted(): void {
    this.committed = true;
  }

  /** Undoes the session's writes unless committed, then closes (unlocks) every file. */
  async release(): Promise<void> {
    // A directory sync still under way ends first (its descriptor closes with it); a failure of it was the caller's to see.
    await this.dirSync;
    try {
      if (!this.committed) for (const t of this.targets) t.rollback();
    } finally {
      for (const t of this.targets) t.close();
    }
  }

  /** Step 2: an existing file from the map with room, lockable, ending where the map says. */
  private openCandidate(bodySize: number, recentFiles: () => readonly FileEnd[], alt: boolean): AppendTarget | undefined {
    this.candidates ??= recentFiles();
    for (const c of this.candidates) {
      if (this.tried.has(c.fileId) || this.options.excludeFileIds?.has(c.fileId)) continue;
      if (!mdboxHasRoom(c.end, bodySize, this.rotate, false)) continue;
      const located = this.paths.locate(c.fileId);
      if (located === undefined || located.alt !== alt) continue;
      this.tried.add(c.fileId);
      const target = AppendTarget.openExisting(located.path, c.fileId, alt, c.end);
      if (target !== undefined) {
        this.targets.push(target);
        return target;
      }
    }
    return undefined;
  }
}


