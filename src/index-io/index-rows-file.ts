/**
 * The records of a dovecot.index opened with its header only
 * (readCheckpoint's `lazy`): read from the descriptor the header was read
 * from, so that a dovecot.index renamed over the name meanwhile (another
 * writer's checkpoint) is never mixed in. Descriptors are bounded: at most
 * MAX_OPEN of them are held; opening one more reads the oldest one's rows
 * into memory (unchecked: the check runs when a row is first used, as for
 * any other) and closes it. A server opening thousands of mailboxes holds
 * MAX_OPEN descriptors, not one per mailbox.
 */
import * as fs from "node:fs";
import { IndexCorruptedError, InvalidArgumentError } from "../shared/errors.js";

/** Descriptors held for rows not read yet. */
export const MAX_OPEN = 8;

/** The held ones, oldest first (a Set keeps insertion order). */
const held = new Set<IndexRowsFile>();

export class IndexRowsFile {
  private fd: number | undefined;
  private rows: Uint8Array | undefined;
  private failure: unknown;

  /** Takes over `fd` (closed once its rows are read, or when it is evicted); the records are `length` bytes at `offset`. */
  constructor(
    readonly path: string,
    fd: number,
    private readonly offset: number,
    private readonly length: number,
  ) {
    this.fd = fd;
    held.add(this);
    while (held.size > MAX_OPEN) held.values().next().value!.evict();
  }

  /** The records, once (the descriptor is closed after). */
  read(): Uint8Array {
    if (this.rows === undefined && this.failure === undefined) this.readNow();
    if (this.failure !== undefined) throw this.failure;
    const rows = this.rows!;
    this.rows = undefined;
    return rows;
  }

  /** `length` bytes at file offset `offset` (inside the records), leaving the rest to read() (a point lookup's leaf). */
  readPart(offset: number, length: number): Uint8Array {
    if (this.failure !== undefined) throw this.failure;
    if (this.rows !== undefined) return this.rows.slice(offset - this.offset, offset - this.offset + length);
    return preadAll(this.fd!, this.path, offset, length);
  }

  /**
   * The index writer is closed (IndexWriter.close): the descriptor is
   * closed now, not when some later eviction reads rows nobody will use.
   * A read after this throws a typed error (the rows are not read from a
   * file that may have been replaced since).
   */
  close(): void {
    if (this.failure !== undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    this.rows = undefined;
    held.delete(this);
    this.failure = new InvalidArgumentError("its index was closed before these records were read", { path: this.path });
    if (fd !== undefined) fs.closeSync(fd);
  }

  /** Rows read early, to free the descriptor; an error is kept for read() to throw (it concerns that mailbox, not the one opening). */
  private evict(): void {
    try {
      this.readNow();
    } catch (err) {
      if (!(err instanceof Error)) throw err;
      this.failure = err;
    }
  }

  private readNow(): void {
    const { offset, length } = this;
    const fd = this.fd;
    if (fd === undefined) throw new Error(`${this.path}: records read twice`);
    this.fd = undefined;
    held.delete(this);
    try {
      this.rows = preadAll(fd, this.path, offset, length);
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** Descriptors held now (tests). */
export function heldIndexRowsFiles(): number {
  return held.size;
}

/** `length` bytes at `offset` of `fd`; a file ending before is an IndexCorruptedError. */
export function preadAll(fd: number, path: string, offset: number, length: number): Uint8Array {
  // Not zeroed first (as readFileSync's buffer): every byte is read into it, or this throws.
  const buf = Buffer.allocUnsafeSlow(length);
  const rows = new Uint8Array(buf.buffer, buf.byteOffset, length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, rows, done, length - done, offset + done);
    if (n === 0) throw new IndexCorruptedError(`file ends at ${offset + done}, records end at ${offset + length}`, { path, offset: offset + done });
    done += n;
  }
  return rows;
}
