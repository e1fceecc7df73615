/**
 * Where a replica stands in the stream: the last stream sequence it applied,
 * in a small JSON file written by tmp + rename (mode from its directory, as
 * Dovecot's files: never wider). Losing a write costs only a re-read: a
 * transaction applied twice is recognised by its modseq (apply.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createNewFile } from "../shared/file-mode.js";
import { ReplicationError } from "../shared/errors.js";

export interface ReplicaPosition {
  /** Stream sequence of the last message applied (0: none). */
  streamSeq: number;
  stream: string;
  storageId: string;
  /** The primary's mailbox GUID (its subject) of every mailbox applied, by name: what promotion takes over. */
  mailboxes: Record<string, string>;
  /** The last stream sequence applied per mailbox name. */
  appliedSeqs: Record<string, number>;
  /** The last stream sequence applied of the storage subject (purge, altmove); absent: none. */
  storageSeq?: number;
  /** The same for the subscriptions subject. */
  subscriptionsSeq?: number;
}

/** @returns the stored position, or undefined when there is none. @throws ReplicationError for a damaged file. */
export function readPosition(file: string): ReplicaPosition | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    const p = JSON.parse(text) as ReplicaPosition;
    if (Number.isSafeInteger(p.streamSeq) && p.streamSeq >= 0) return { ...p, mailboxes: p.mailboxes ?? {}, appliedSeqs: p.appliedSeqs ?? {} };
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
  }
  throw new ReplicationError("replica position file is not {streamSeq, stream, storageId}", { path: file });
}

export function writePosition(file: string, p: ReplicaPosition): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.rmSync(tmp, { force: true });
  const fd = createNewFile(tmp);
  try {
    fs.writeSync(fd, JSON.stringify(p) + "\n");
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}
