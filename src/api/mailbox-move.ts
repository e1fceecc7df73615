/**
 * MOVE: a copy commit into the target, then an expunge commit in the
 * source, as Dovecot moves between mailboxes (two logs, two locks: there is
 * no one transaction for both). A kill between the two would leave the
 * message in both mailboxes, so the move journals its intent in the source
 * first (move-intent.ts), and the next writer to open the source finishes
 * a move that died: when the copies are in the target, it expunges the
 * originals; when they are not, the move never happened.
 */
import * as path from "node:path";
import type { UidRange } from "../log/types.js";
import type { CommitResult, Mailbox } from "./mailbox.js";
import { seqRangeOfUids, uidAt } from "../projections/read.js";
import { readCopies } from "./mailbox-copy.js";
import type { TransactionCommitResult } from "./mailbox-transaction.js";
import { toRanges } from "./uid-ranges.js";
import { claimMoveIntentSlot, interruptedMoveSlots, type MoveIntent } from "./move-intent.js";

export interface MoveResult {
  /** The moved messages' UIDs in the source (those that existed), ascending. */
  readonly sourceUids: number[];
  /** Their UIDs in the target, in the same order. */
  readonly appendedUids: number[];
  /** The target's commit of the copies (undefined when nothing was moved). */
  readonly copied: TransactionCommitResult | undefined;
  /** The source's commit of the expunges. */
  readonly expunged: CommitResult | undefined;
}

/**
 * Moves messages `uids` of `source` to `target`. When it returns, they are
 * in the target and expunged from the source; if the process dies before,
 * they end up in exactly one of the two once the source is opened again.
 */
export async function moveMessages(source: Mailbox, target: Mailbox, uids: readonly UidRange[], fsync: boolean): Promise<MoveResult> {
  // A move into `target` that failed after its copy landed (e.g. its expunge timed out on the lock) is finished, not copied again by a retry.
  await finishInterruptedMoves(source, { borrowed: target }, fsync);
  const copies = await readCopies(source, uids);
  if (copies.length === 0) return { sourceUids: [], appendedUids: [], copied: undefined, expunged: undefined };
  const targetState = await target.refresh();
  const sourceUids = copies.map((c) => c.uid);
  const slot = await claimMoveIntentSlot(path.dirname(source.indexPrefix), fsync);
  try {
    slot.write({
      target: target.name,
      targetGuid: target.guid(),
      targetUidValidity: targetState.header.uidValidity,
      targetNextUid: targetState.header.nextUid,
      sourceUids,
      targetGuids: copies.map((c) => target.backend.savedGuid?.(c.input.body, c.input.guid) ?? c.input.guid),
    });
    const tx = target.transaction();
    for (const c of copies) tx.append(c.input);
    const copied = await tx.commit();
    const expunged = await source.transaction().expunge(toRanges(sourceUids)).commit();
    slot.clear();
    return { sourceUids, appendedUids: copied.appendedUids, copied, expunged };
  } finally {
    // After a failure the intent stays: whether the copy landed is for the next open (or move into the same target) to find out.
    slot.close();
  }
}

/** Where a finisher finds the target mailboxes of interrupted moves. */
export interface MoveTargets {
  /** Opens mailbox `name` when it exists and has an index (undefined: it does not); the finisher closes it. */
  readonly openExisting?: (name: string) => Promise<Mailbox | undefined>;
  /** An open mailbox to use when it is the target; intents for other targets are left when there is no `openExisting`. */
  readonly borrowed?: Mailbox;
}

/**
 * Finishes the moves out of `source` that a dead process (or a failed
 * moveTo) left in its move intent journal.
 */
export async function finishInterruptedMoves(source: Mailbox, targets: MoveTargets, fsync: boolean): Promise<void> {
  for (const { slot, intent } of await interruptedMoveSlots(path.dirname(source.indexPrefix), fsync)) {
    try {
      if (intent) {
        const landed = await withTarget(intent.target, targets, (target) => copiesLanded(intent, target));
        if (landed === "unknown") continue;
        if (landed) await source.transaction().expunge(toRanges(intent.sourceUids)).commit();
      }
      slot.clear();
    } finally {
      slot.close();
    }
  }
}

/** Runs `fn` on the target named `name`: false when it is gone, "unknown" when `targets` cannot open it. */
async function withTarget(name: string, targets: MoveTargets, fn: (target: Mailbox) => Promise<boolean>): Promise<boolean | "unknown"> {
  if (targets.borrowed?.name === name) return fn(targets.borrowed);
  if (!targets.openExisting) return "unknown";
  const target = await targets.openExisting(name);
  if (!target) return false;
  try {
    return await fn(target);
  } finally {
    await target.close();
  }
}

/**
 * Whether the move's copy commit landed: the target (the same mailbox, by
 * GUID and UIDVALIDITY) holds a message with each copy's GUID at or above
 * the next UID it had before the copy. The copy is one transaction, so it
 * is all of them or none.
 */
async function copiesLanded(intent: MoveIntent, target: Mailbox): Promise<boolean> {
  const state = await target.refresh();
  if (state.header.uidValidity !== intent.targetUidValidity || target.guid() !== intent.targetGuid) return false;
  const wanted = new Map<string, number>();
  for (const guid of intent.targetGuids) wanted.set(guid, (wanted.get(guid) ?? 0) + 1);
  const copied = seqRangeOfUids(state, intent.targetNextUid, 0xffffffff);
  for (let seq = copied?.seq1 ?? 1; copied && seq <= copied.seq2; seq++) {
    const guid = (await target.backend.messageInfo(state, uidAt(state, seq))).guid;
    const left = wanted.get(guid);
    if (left === 1) wanted.delete(guid);
    else if (left !== undefined) wanted.set(guid, left - 1);
    if (wanted.size === 0) return true;
  }
  return false;
}
