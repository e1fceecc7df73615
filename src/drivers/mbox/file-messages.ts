/**
 * Reading an open mbox file message by message for the driver: the whole
 * file (a sync), or one message at an index's from offset, with its header
 * block at hand for MD5s, keyword checks and header rewrites.
 */
import { readFullyAt } from "../../shared/read-at.js";
import { MailCorruptedError } from "../../shared/errors.js";
import { mboxHeaderMd5 } from "./header-md5.js";
import type { IndexedMessage } from "./index-view.js";
import { scanMbox, type MboxMessage } from "./scan.js";
import { FileSource, type ByteSource } from "./source.js";

/** Reads [offset, offset+length) of `fd` into a new buffer. */
export function readRange(fd: number, offset: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  const got = readFullyAt(fd, out, offset, length);
  return got === length ? out : out.subarray(0, got);
}

/** The header lines of `msg` (without the empty line that ends them). */
export function headerBlock(src: ByteSource, msg: MboxMessage): Buffer {
  return Buffer.from(src.read(msg.headerOffset, msg.headerEndOffset - msg.headerOffset));
}

/** @returns every message of the file open as `fd` (pseudo message included). */
export function scanFile(fd: number, path: string): { src: FileSource; messages: MboxMessage[] } {
  const src = new FileSource(fd);
  return { src, messages: [...scanMbox(src, { path })] };
}

/**
 * @returns the message whose from offset is `fromOffset`, or undefined when
 *   no From_ line is there (the file changed behind the index).
 */
export function messageAt(src: ByteSource, fromOffset: number, path: string): MboxMessage | undefined {
  if (fromOffset >= src.size) return undefined;
  return nextOf(scanMbox(src, { path, fromOffset }));
}

/** @returns the scan's next message, or undefined when it ended or found no valid From_ line there. */
function nextOf(scan: Generator<MboxMessage>): MboxMessage | undefined {
  try {
    const next = scan.next();
    return next.done ? undefined : next.value;
  } catch (err) {
    // No valid From_ line there: the file changed behind the index.
    if (err instanceof MailCorruptedError) return undefined;
    throw err;
  }
}

/**
 * messageAt for a reader that asks for message after message of a file that
 * cannot change meanwhile (an import reads UID 1..N): when the message asked
 * for starts where the last one ended, the last scan goes on from the
 * boundary it found, whose From_ line it checked already, instead of a new
 * scan checking that line again. Any other offset starts a new scan. What it
 * returns is what messageAt would (`uid` follows no rule: use `rawUid`).
 */
export class MessageCursor {
  private scan: Generator<MboxMessage> | undefined;
  private last: MboxMessage | undefined;

  constructor(
    readonly src: ByteSource,
    private readonly path: string,
  ) {}

  at(fromOffset: number): MboxMessage | undefined {
    const follows = this.scan !== undefined && this.last !== undefined && this.last.endOffset === fromOffset;
    if (!follows) {
      this.scan = fromOffset < this.src.size ? scanMbox(this.src, { path: this.path, fromOffset }) : undefined;
    }
    const msg = this.scan === undefined ? undefined : nextOf(this.scan);
    // A scan that failed or went elsewhere is not followed again.
    if (msg === undefined || msg.fromOffset !== fromOffset) {
      this.scan = undefined;
      this.last = undefined;
      return follows ? this.at(fromOffset) : undefined;
    }
    this.last = msg;
    return msg;
  }
}

/**
 * @returns true when `msg` is the index's message `expected`: its X-UID is
 *   that UID, or else the header MD5 the index keeps for it matches (as
 *   Dovecot's mbox_sync_parse_match_mail decides).
 */
export function isSameMessage(src: ByteSource, msg: MboxMessage, expected: Pick<IndexedMessage, "uid" | "md5">): boolean {
  if (msg.pseudo) return false;
  if (msg.rawUid === expected.uid) return true;
  if (expected.md5 === undefined) return false;
  // Hashed in the source's window, not a copy of it: nothing reads the source meanwhile.
  const md5 = mboxHeaderMd5(src.read(msg.headerOffset, msg.headerEndOffset - msg.headerOffset));
  return Buffer.compare(md5, expected.md5) === 0;
}
