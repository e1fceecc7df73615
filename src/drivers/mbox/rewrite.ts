/**
 * Writing an mbox anew: for expunges, for headers that do not fit in their
 * padding, and for saves that must go before messages the index does not
 * know yet.
 *
 * Crash safety — why a new file and a rename, not Dovecot's in-place move.
 * Dovecot compacts the file in place (mbox-sync-rewrite.c: bodies moved
 * backwards over expunged space). A kill in the middle of such a move leaves
 * a file where part of the data sits at its new place and part still at its
 * old one: nothing is lost byte-wise, but the file no longer parses as the
 * messages it held (a message cut short, then stale bytes), and any reader —
 * Dovecot included — sees damage until someone repairs it with knowledge of
 * the move. Here the new content goes to `<mbox>.mailstore-tmp.lock` beside
 * the mbox (same file system; `*.lock` so that no lister takes it for a
 * mailbox), is fsynced, and is renamed over the mbox, then the directory is
 * fsynced. At every instant the mbox path names either the complete old file
 * or the complete new one, so a kill at any moment loses nothing and every
 * reader can parse what it finds; a leftover temp file is simply replaced by
 * the next rewrite.
 *
 * The costs of replacing the inode, and how they are met: the dotlock is
 * held throughout, so every dotlocking writer (Dovecot, procmail, Postfix
 * local, mutt) opens the new file after us; the new file is fcntl-locked
 * before it becomes visible; the old inode is truncated before its lock is
 * released, so a reader that was waiting on it finds no messages instead of
 * wrong ones, and resyncs. Mode and owner are copied; the file must be
 * replaceable (a writable directory — not the case for a root-owned
 * /var/mail without privileges, where this rewrite fails cleanly).
 */
import * as fs from "node:fs";
import type { WriteHold } from "./mbox-file.js";
import type { MboxMessage } from "./scan.js";

/** One message of the new file. */
export type RewriteItem =
  /** A message copied byte for byte (From_ line to the end of its text). */
  | { readonly kind: "copy"; readonly msg: MboxMessage; readonly uid?: number }
  /** A message with a new header block (header lines, no empty line); From_ line and the rest copied. */
  | { readonly kind: "reheader"; readonly msg: MboxMessage; readonly header: Uint8Array; readonly uid?: number }
  /** A complete new message (formatMboxMessage/formatPseudoMessage), separator included. */
  | { readonly kind: "bytes"; readonly data: Uint8Array; readonly uid?: number };

export interface RewriteResult {
  /** New from offset of every item that has a uid. */
  readonly offsets: Map<number, number>;
  readonly size: number;
  readonly mtimeSecs: number;
}

/** Suffix of the temporary file (see the module comment). */
export const REWRITE_TEMP_SUFFIX = ".mailstore-tmp.lock";
const BUFFER_BYTES = 1024 * 1024;
const TOUCH_EVERY_BYTES = 64 * 1024 * 1024;

/** Buffered sequential writer that copies ranges from the source descriptor. */
class Output {
  private readonly buf = Buffer.allocUnsafe(BUFFER_BYTES);
  private used = 0;
  written = 0;
  private sinceTouch = 0;

  constructor(private readonly fd: number, private readonly src: number, private readonly touch: () => void) {}

  bytes(data: Uint8Array): void {
    let pos = 0;
    while (pos < data.length) {
      if (this.used === this.buf.length) this.flush();
      const n = Math.min(data.length - pos, this.buf.length - this.used);
      this.buf.set(data.subarray(pos, pos + n), this.used);
      this.used += n;
      pos += n;
    }
  }

  /** Copies [from, to) of the source file. */
  copy(from: number, to: number): void {
    let pos = from;
    while (pos < to) {
      if (this.used === this.buf.length) this.flush();
      const want = Math.min(to - pos, this.buf.length - this.used);
      const n = fs.readSync(this.src, this.buf, this.used, want, pos);
      if (n === 0) throw new Error(`mbox shrank while rewriting (offset ${pos})`);
      this.used += n;
      pos += n;
    }
  }

  flush(): void {
    let off = 0;
    while (off < this.used) off += fs.writeSync(this.fd, this.buf, off, this.used - off);
    this.written += this.used;
    this.sinceTouch += this.used;
    this.used = 0;
    if (this.sinceTouch >= TOUCH_EVERY_BYTES) {
      this.touch();
      this.sinceTouch = 0;
    }
  }

  get position(): number {
    return this.written + this.used;
  }
}

const LF = Buffer.from("\n");

/**
 * Writes `items` as the new mbox and puts it in place under `hold` (see the
 * module comment). The hold continues on the new file.
 */
export async function rewriteMbox(hold: WriteHold, items: readonly RewriteItem[]): Promise<RewriteResult> {
  const path = hold.file.path;
  const tempPath = path + REWRITE_TEMP_SUFFIX;
  const st = fs.fstatSync(hold.fd);
  fs.rmSync(tempPath, { force: true });
  const fd = fs.openSync(tempPath, "wx+", st.mode & 0o7777);
  const offsets = new Map<number, number>();
  try {
    try {
      fs.fchownSync(fd, st.uid, st.gid);
    } catch {
      // Not permitted (not root): the new file stays ours.
    }
    const out = new Output(fd, hold.fd, () => hold.touch());
    for (const item of items) {
      const start = out.position;
      if (item.uid !== undefined) offsets.set(item.uid, start === 0 ? 0 : start - 1);
      switch (item.kind) {
        case "copy":
          out.copy(item.msg.fromLineOffset, item.msg.endOffset);
          out.bytes(LF);
          break;
        case "reheader":
          out.copy(item.msg.fromLineOffset, item.msg.headerOffset);
          out.bytes(item.header);
          out.copy(item.msg.headerEndOffset, item.msg.endOffset);
          out.bytes(LF);
          break;
        case "bytes":
          out.bytes(item.data);
          break;
      }
    }
    out.flush();
    fs.fsyncSync(fd);
    await hold.replace(tempPath, fd);
  } catch (err) {
    if (hold.fd !== fd) {
      fs.closeSync(fd);
      fs.rmSync(tempPath, { force: true });
    }
    throw err;
  }
  const after = fs.fstatSync(fd);
  return { offsets, size: after.size, mtimeSecs: Math.floor(after.mtimeMs / 1000) };
}

/**
 * Overwrites the header lines of `msg` with `header` of exactly the same
 * length, and syncs. One small pwrite: a kill cannot tear it.
 */
export function writeHeaderInPlace(fd: number, msg: MboxMessage, header: Uint8Array): void {
  if (header.length !== msg.headerEndOffset - msg.headerOffset) throw new Error("in-place header must keep its length");
  let off = 0;
  while (off < header.length) off += fs.writeSync(fd, header, off, header.length - off, msg.headerOffset + off);
}
