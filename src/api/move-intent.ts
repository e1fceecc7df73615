/**
 * The move intent journal: what a MOVE is about to do, written before its
 * copy commits, so that a move killed between its two commits (the copy
 * into the target, then the expunge from the source, as Dovecot does it)
 * is finished by the next writer instead of leaving the message in both
 * mailboxes.
 *
 * Where. Slot files `mailstore.move-intent.<n>` in the source mailbox's
 * index directory (beside mbox's redo journal; never a directory, which a
 * Maildir `LAYOUT=fs` would list as a mailbox). A mover takes the lowest
 * slot it can flock(2) without waiting that holds no intent, so movers of
 * one mailbox never wait for each other; slots are emptied, not removed,
 * so slot n exists only when every slot below it does and a reader stops
 * at the first missing one (one stat() when the mailbox never moved).
 *
 * Who owns a slot. Its flock: a mover holds it from before writing its
 * intent until after emptying the slot. An intent in a slot that can be
 * locked therefore belongs to a mover that died mid-move.
 *
 * Record: "MSMOVE01\n", the intent as JSON, "\n", the SHA-1 of the JSON in
 * hex. A record whose SHA-1 does not match was cut short while being
 * written, before the copy began: there is nothing to finish.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { tryFlockExclusive } from "../drivers/dbox/flock.js";
import { openCreating } from "../shared/file-mode.js";
import { fsyncDir } from "../shared/fsync-dir.js";

/** A slot's name in the index directory, without its number. */
export const MOVE_INTENT_PREFIX = "mailstore.move-intent.";

const MAGIC = "MSMOVE01\n";

/** What a move is about to do. */
export interface MoveIntent {
  /** The target mailbox's name, GUID and UIDVALIDITY when the move began. */
  readonly target: string;
  readonly targetGuid: string | undefined;
  readonly targetUidValidity: number;
  /** The target's next UID before the copy: the copies get UIDs at or above it. */
  readonly targetNextUid: number;
  /** The messages moved, in the source. */
  readonly sourceUids: readonly number[];
  /** The GUID each copy gets in the target (`sourceUids` order). */
  readonly targetGuids: readonly string[];
}

export function encodeMoveIntent(intent: MoveIntent): Buffer {
  const json = JSON.stringify(intent);
  return Buffer.from(`${MAGIC}${json}\n${createHash("sha1").update(json).digest("hex")}`, "utf8");
}

/** @returns the intent, or undefined for an empty slot or a record cut short. */
export function decodeMoveIntent(bytes: Uint8Array): MoveIntent | undefined {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
  if (!text.startsWith(MAGIC)) return undefined;
  const end = text.lastIndexOf("\n");
  if (end < MAGIC.length) return undefined;
  const json = text.slice(MAGIC.length, end);
  if (createHash("sha1").update(json).digest("hex") !== text.slice(end + 1)) return undefined;
  return JSON.parse(json) as MoveIntent;
}

/** One locked slot file. */
export class MoveIntentSlot {
  private closed = false;

  constructor(readonly path: string, private readonly fd: number, private readonly fsync: boolean) {}

  /** The intent in the slot (undefined: empty, or cut short while written). */
  read(): MoveIntent | undefined {
    return decodeMoveIntent(fs.readFileSync(this.fd));
  }

  /** Replaces the slot's content with `intent`, durable before it returns when fsync is on. */
  write(intent: MoveIntent): void {
    const bytes = encodeMoveIntent(intent);
    fs.ftruncateSync(this.fd, 0);
    let off = 0;
    while (off < bytes.length) off += fs.writeSync(this.fd, bytes, off, bytes.length - off, off);
    if (this.fsync) fs.fsyncSync(this.fd);
  }

  /** Empties the slot: the move is finished (or there was nothing to finish). */
  clear(): void {
    fs.ftruncateSync(this.fd, 0);
    if (this.fsync) fs.fsyncSync(this.fd);
  }

  /** Releases the slot (closing the descriptor drops its flock). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}

function slotPath(indexDir: string, n: number): string {
  return path.join(indexDir, `${MOVE_INTENT_PREFIX}${n}`);
}

/** Opens slot `n` and flocks it without waiting. @returns the slot, or undefined when a live mover holds it. */
async function lockSlot(file: string, fd: number, fsync: boolean): Promise<MoveIntentSlot | undefined> {
  try {
    if (tryFlockExclusive(fd, file)) return new MoveIntentSlot(file, fd, fsync);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  fs.closeSync(fd);
  return undefined;
}

/**
 * Takes a slot for a new move in `indexDir`: the lowest one no live mover
 * holds and no dead one left an intent in (that is for finishInterrupted).
 */
export async function claimMoveIntentSlot(indexDir: string, fsync: boolean): Promise<MoveIntentSlot> {
  for (let n = 0; ; n++) {
    const file = slotPath(indexDir, n);
    const existed = fs.existsSync(file);
    const slot = await lockSlot(file, openCreating(file, fs.constants.O_RDWR), fsync);
    if (!existed && fsync) fsyncDir(indexDir);
    if (!slot) continue;
    if (slot.read() === undefined) return slot;
    slot.close();
  }
}

/**
 * The slots in `indexDir` whose intent a dead mover left, locked: the
 * caller finishes each move, then clears and closes the slot.
 */
export async function interruptedMoveSlots(indexDir: string, fsync: boolean): Promise<Array<{ slot: MoveIntentSlot; intent: MoveIntent | undefined }>> {
  const found: Array<{ slot: MoveIntentSlot; intent: MoveIntent | undefined }> = [];
  for (let n = 0; ; n++) {
    const file = slotPath(indexDir, n);
    let fd: number;
    try {
      if (fs.statSync(file).size === 0) continue;
      fd = fs.openSync(file, fs.constants.O_RDWR);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return found;
      throw err;
    }
    const slot = await lockSlot(file, fd, fsync);
    if (slot) found.push({ slot, intent: slot.read() });
  }
}
