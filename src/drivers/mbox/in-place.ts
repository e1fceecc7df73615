/**
 * Rewriting an mbox in place — for expunges, headers that outgrow their
 * padding, and saves that must go before messages the index does not know —
 * so that the file is a sequence of whole messages at every instant.
 *
 * Why in place. The file is never replaced: Dovecot locks `fcntl` first
 * (mbox_write_locks = fcntl dotlock) and never looks at the path again once
 * it waits on a descriptor, so a Dovecot save waiting while we renamed a new
 * file over the old one would append to the old inode — observed losing
 * mail (test/interop/mbox-concurrent.test.ts) — and no note left in the old
 * file stops it.
 *
 * Why it survives a kill. Dovecot moves message bodies over expunged space
 * chunk by chunk; a kill in between leaves a torn file. Here the tail of the
 * file is rewritten from its first change onwards in windows: each window is
 * read into memory, and written back with one write over exactly the
 * messages it read, whose new versions take exactly the same room — free
 * space is handed on as padding (pieces.ts) in the last message written
 * that can carry it, which the next window rewrites first. So before each
 * write the file holds the old messages, and after it the new ones: every
 * message exactly once, whole. Space still missing (a header that grew) is
 * found the way Dovecot finds it: from the padding of the messages that
 * follow, else at the end, where one write extends the file. The last write
 * of a shrinking rewrite also cuts the file after the last message.
 *
 * SIGKILL can cut a write of a regular file short at a page boundary, so
 * each write goes through the hold's redo journal (redo-journal.ts): a
 * window killed midway is written again by the next writer, before it reads
 * anything. Until then the file is torn: a program that breaks the dead
 * writer's dotlock first (Dovecot) sees what its own crash mid-rewrite
 * leaves. (Files torn by versions before the journal, between the last
 * write and the truncation, are still cut by repairInterruptedTrim.)
 */
import * as fs from "node:fs";
import type { WriteHold } from "./mbox-file.js";
import type { Piece } from "./pieces.js";
import type { MboxMessage } from "./scan.js";
import { UnitReader } from "./unit-reader.js";
import { assert } from "../../shared/errors.js";

/** The file's messages as the rewrite sees them: where each starts and ends (next From_ line, or EOF). */
export interface Unit {
  readonly start: number;
  readonly end: number;
}

export interface InPlacePlan {
  readonly units: readonly Unit[];
  /** First unit that changes (or the count, for inserts at the end only). */
  readonly firstChange: number;
  /**
   * What unit `i` becomes (undefined: it goes). Called once, when its window
   * is read, with the unit's old bytes (a view that stays valid as long as
   * the rewrite holds the piece: the piece may keep it).
   */
  readonly pieceFor: (i: number, unit: Buffer) => Piece | undefined;
  /** New messages that go before unit `i` (`units.length`: at the end). */
  readonly insertsBefore: (i: number) => readonly Piece[];
  /** Bytes of old messages a window reads before it writes (default 8 MiB; tests use tiny ones). */
  readonly windowBytes?: number;
  /** Called after every write and truncation (tests check the file there). */
  readonly afterWrite?: () => void;
}

export interface InPlaceResult {
  /** From offset of every piece written that has a uid. */
  readonly offsets: Map<number, number>;
  readonly size: number;
}

/** Bytes of old messages a window reads before it writes (more when growth needs it). */
const WINDOW_BYTES = 8 * 1024 * 1024;
const TOUCH_EVERY_BYTES = 64 * 1024 * 1024;

/** Dovecot's from offset of a message starting at `start` after `prev` (0 at the file start). */
function fromOffsetAt(start: number, prev: Buffer | undefined): number {
  if (start === 0) return 0;
  return prev && prev.length >= 2 && prev[prev.length - 2] === 0x0d ? start - 2 : start - 1;
}

/**
 * Sizes for `pieces` to fill exactly `room` bytes: preferred sizes, shrunk
 * toward their minimum from the first on when they do not fit, the rest
 * given as padding to the last piece that can carry it.
 * @returns the sizes, or undefined when even the minimum does not fit, or
 *   there is room left and no piece to carry it.
 */
function fit(pieces: readonly Piece[], room: number): number[] | undefined {
  const sizes = pieces.map((p) => p.preferred.length);
  let total = sizes.reduce((a, b) => a + b, 0);
  for (let i = 0; i < pieces.length && total > room; i++) {
    const cut = Math.min(sizes[i] - pieces[i].minSize, total - room);
    sizes[i] -= cut;
    total -= cut;
  }
  if (total > room) return undefined;
  if (total < room) {
    let k = pieces.length - 1;
    while (k >= 0 && !pieces[k].sizeOk(sizes[k] + room - total)) k--;
    if (k < 0) return undefined;
    sizes[k] += room - total;
  }
  return sizes;
}

/** The bytes `pieces` take at their preferred sizes. */
function preferredSizeOf(pieces: readonly Piece[]): number {
  let total = 0;
  for (const p of pieces) total += p.preferred.length;
  return total;
}

/**
 * @returns where the next window's rewrite starts: the last piece written
 *   at other than its preferred size (it carries padding), else the last
 *   one that could (0 when none could: the whole list).
 */
function tailStart(pieces: readonly Piece[], sizes: readonly number[]): number {
  for (let k = pieces.length - 1; k > 0; k--) if (sizes[k] !== pieces[k].preferred.length) return k;
  for (let k = pieces.length - 1; k > 0; k--) if (pieces[k].sizeOk(pieces[k].preferred.length + 1)) return k;
  return 0;
}

/**
 * Rewrites the file under `hold` as `plan` says (see the module comment).
 * The "tail" is what the next window rewrites first: the last written
 * piece that can carry padding, and the pieces written after it.
 */
export function rewriteInPlace(hold: WriteHold, plan: InPlacePlan): InPlaceResult {
  const fd = hold.fd;
  const { units } = plan;
  const n = units.length;
  const offsets = new Map<number, number>();
  const windowBytes = plan.windowBytes ?? WINDOW_BYTES;
  const observe = plan.afterWrite ?? (() => undefined);
  let fileSize = fs.fstatSync(fd).size;
  let tail: Piece[] = [];
  let tailBytes: Buffer[] = [];
  let tailStartAt = plan.firstChange < n ? units[plan.firstChange].start : fileSize;
  let written = tailStartAt;
  // The message before the tail (only its last two bytes matter: a CRLF separator moves the from offset).
  let prevBytes: Buffer | undefined;
  if (plan.firstChange > 0 && plan.firstChange <= n) {
    const before = units[plan.firstChange - 1];
    prevBytes = Buffer.alloc(Math.min(2, before.end - before.start));
    fs.readSync(fd, prevBytes, 0, prevBytes.length, before.end - prevBytes.length);
  }
  // Read ahead by a window and an eighth (1 MiB by default), so that the message crossing
  // the window's end usually comes from the same read; tests' tiny windows reuse blocks often.
  const reader = new UnitReader(fd, windowBytes + Math.ceil(windowBytes / 8));
  // Where the unit each piece was made of starts: what the tail still holds views of.
  const unitStartOf = new WeakMap<Piece, number>();
  let sinceTouch = 0;
  let u = plan.firstChange;
  let insertsAtEndDone = false;

  /** Writes `list` at the tail; `last`: nothing follows, the file ends after it. */
  const write = (list: readonly Piece[], sizes: readonly number[], last = false) => {
    const bufs = list.map((p, i) => p.render(sizes[i]));
    let pos = tailStartAt;
    bufs.forEach((b, i) => {
      const p = list[i];
      if (p.uid !== undefined) offsets.set(p.uid, fromOffsetAt(pos, i === 0 ? prevBytes : bufs[i - 1]));
      pos += b.length;
    });
    const length = pos - tailStartAt;
    const end = tailStartAt + length;
    const cut = last && end < fileSize ? end : undefined;
    // The pieces as they are (views of the read blocks), gathered by the write itself.
    // The record stays for the next window's to replace: settled once, at the end.
    hold.write(bufs, tailStartAt, cut, true);
    observe();
    written = end;
    fileSize = cut ?? Math.max(fileSize, written);
    const k = tailStart(list, sizes);
    // A copy: the piece may be a view of a read block that is read into again.
    if (k > 0) prevBytes = Buffer.from(bufs[k - 1].subarray(-2));
    tailStartAt += bufs.slice(0, k).reduce((a, b) => a + b.length, 0);
    tail = list.slice(k);
    tailBytes = bufs.slice(k);
    reader.release(Math.min(...tail.map((p) => unitStartOf.get(p) ?? Infinity)));
    sinceTouch += length;
    if (sinceTouch >= TOUCH_EVERY_BYTES) {
      hold.touch();
      sinceTouch = 0;
    }
  };

  while (u < n || !insertsAtEndDone) {
    // Read a window: whole units from `u`, and the inserts that go before them.
    const pieces: Piece[] = [];
    let end = written;
    let j = u;
    // fit() is asked only when the window's pieces can be written in its room: their preferred sizes
    // fit, or else the least sizes do. A file that grows reads to its end in one window, and asking
    // fit() about every piece so far at each message made the rewrite quadratic (20,000 messages given
    // an X-UID: ~30 s). The least sizes are summed only then, each piece's once: a piece's minSize
    // may regenerate its header, which a shrinking rewrite (an expunge) never needs.
    let preferredBytes = preferredSizeOf(tail);
    let minBytes = 0;
    let minCounted = 0;
    const mayFit = (room: number): boolean => {
      if (preferredBytes <= room) return true;
      for (; minCounted < tail.length + pieces.length; minCounted++) minBytes += (minCounted < tail.length ? tail[minCounted] : pieces[minCounted - tail.length]).minSize;
      return minBytes <= room;
    };
    for (;;) {
      const inserts = plan.insertsBefore(j);
      pieces.push(...inserts);
      preferredBytes += preferredSizeOf(inserts);
      if (j === n) {
        insertsAtEndDone = true;
        break;
      }
      const piece = plan.pieceFor(j, reader.read(units[j].start, units[j].end));
      if (piece) {
        pieces.push(piece);
        unitStartOf.set(piece, units[j].start);
        preferredBytes += piece.preferred.length;
      }
      end = units[j].end;
      j++;
      if (end - written >= windowBytes && mayFit(end - tailStartAt) && fit([...tail, ...pieces], end - tailStartAt)) break;
      if (j === n && plan.insertsBefore(n).length === 0) {
        insertsAtEndDone = true;
        break;
      }
    }
    const list = [...tail, ...pieces];
    const room = end - tailStartAt;
    const sizes = fit(list, room);
    if (sizes) write(list, sizes);
    else {
      // At the end of the file (fit() fails earlier only by asking for a bigger window):
      // the rest is written at its preferred size. The file grows — one write — or,
      // when nothing could carry the room left (plans avoid that: pieces after a
      // dropped message can pad), the same write cuts it after the last message.
      const preferred = list.map((p) => p.preferred.length);
      const short = preferred.reduce((a, b) => a + b, 0) < room;
      assert(!short || insertsAtEndDone, `in-place rewrite of ${hold.file.path} left room before offset ${end}`);
      write(list, preferred, short);
    }
    u = j;
  }

  // Everything is written; the tail may still carry padding, the file may end in old bytes:
  // the tail is written without its padding and the file cut after it, in one journaled step.
  if (tailBytes.some((b, i) => b.length !== tail[i].preferred.length)) write(tail, tail.map((p) => p.preferred.length), true);
  else if (written < fileSize) {
    // Before settle(): a replay of the last window's record writes nothing beyond `written`.
    fs.ftruncateSync(fd, written);
    observe();
    fileSize = written;
  }
  hold.syncData();
  hold.settle();
  return { offsets, size: fileSize };
}

/**
 * Overwrites the header lines of `msg` with `header` of exactly the same
 * length (a flag change within the padding), as one write a kill cannot
 * tear (redo-journal.ts; usually within one page, where it needs no journal).
 */
export function writeHeaderInPlace(hold: WriteHold, msg: MboxMessage, header: Uint8Array): void {
  assert(header.length === msg.headerEndOffset - msg.headerOffset, "in-place header must keep its length");
  hold.write(header, msg.headerOffset);
}

/**
 * Cuts the repeat a kill between the last write and the truncation of a
 * shrinking rewrite leaves (see the module comment): the last message's
 * Content-Length ends its body one separator before bytes that repeat, up
 * to the end of the file, the bytes just before them.
 * @returns true when the file was cut (scan it again).
 */
export function repairInterruptedTrim(fd: number, last: MboxMessage | undefined, fileSize: number): boolean {
  if (!last || last.contentLength === undefined || last.endFromContentLength) return false;
  const end = last.bodyOffset + last.contentLength + 1;
  const extra = fileSize - end;
  if (extra <= 0 || end - extra < last.headerOffset) return false;
  const bytes = Buffer.alloc(extra * 2 + 1);
  fs.readSync(fd, bytes, 0, bytes.length, end - 1 - extra);
  if (bytes[extra] !== 0x0a) return false; // the separator where Content-Length says
  if (!bytes.subarray(1, 1 + extra).equals(bytes.subarray(1 + extra))) return false;
  fs.ftruncateSync(fd, end);
  fs.fdatasyncSync(fd);
  return true;
}
