import { assertNever } from "../shared/errors.js";
import type { LogPosition } from "../log/types.js";
import { flagNames } from "../shared/flags.js";
import type { Effect, TransactionEffects } from "../projections/effects.js";

/** One change a committed transaction made, as a server reports it (IDLE, JMAP push). */
export type MailboxChange =
  | { type: "append"; uid: number; flags: string[] }
  | { type: "flags"; uid1: number; uid2: number; add: string[]; remove: string[] }
  | { type: "keywords"; uid1: number; uid2: number; keyword: string; action: "add" | "remove" }
  | { type: "keywords-reset"; uid1: number; uid2: number }
  | { type: "expunge"; uid1: number; uid2: number }
  | { type: "expunge-request"; uid1: number; uid2: number }
  | { type: "modseq"; uid: number; modseq: bigint }
  | { type: "attribute"; key: string; scope: "private" | "shared"; action: "set" | "unset" }
  | { type: "mailbox-deleted" }
  | { type: "mailbox-undeleted" };

/** All changes of one committed transaction, in log order. */
export interface ChangeBatch {
  /** Where the transaction starts; resume after it with `changes(batch.end)`. */
  position: LogPosition;
  end: LogPosition;
  /** The mailbox's modseq after the transaction. */
  modseq: bigint;
  /** Written by a backend sync (mail files already changed) rather than a client request. */
  external: boolean;
  changes: MailboxChange[];
}

/**
 * The changes a transaction made, from its effects
 * (`applyTransactionWithEffects`), so a batch says what really changed:
 * - a change that changed nothing is not in it (a flag a message already
 *   had, a keyword it lacked, an unknown or expunged UID): a transaction
 *   of no-ops gives a batch with no changes;
 * - `flags` carries the bits that flipped, per range of messages that got
 *   the same flip; a UID range spans existing messages only at its ends;
 * - `modseq` is reported where a MODSEQ_UPDATE raised a message's modseq
 *   (as before); a modseq raised by a change is that change's, at the
 *   batch's modseq, and not repeated per message;
 * - a deletion request (INDEX_DELETED without EXTERNAL) is not reported,
 *   the deletion is.
 */
export function changeBatchFromEffects(fx: TransactionEffects): ChangeBatch {
  const changes: MailboxChange[] = [];
  for (const e of fx.effects) {
    const change = changeOf(e);
    if (change !== undefined) changes.push(change);
  }
  return { position: fx.position, end: fx.end, modseq: fx.modseq, external: fx.external, changes };
}

function changeOf(e: Effect): MailboxChange | undefined {
  switch (e.type) {
    case "append":
      return { type: "append", uid: e.uid, flags: flagNames(e.flags) };
    case "flags":
      return { type: "flags", uid1: e.uid1, uid2: e.uid2, add: flagNames(e.add), remove: flagNames(e.remove) };
    case "keywords":
      return { type: "keywords", uid1: e.uid1, uid2: e.uid2, keyword: e.keyword, action: e.action };
    case "keywords-reset":
      return { type: "keywords-reset", uid1: e.uid1, uid2: e.uid2 };
    case "expunge":
      return { type: "expunge", uid1: e.uid1, uid2: e.uid2 };
    case "expunge-request":
      return { type: "expunge-request", uid1: e.uid1, uid2: e.uid2 };
    case "modseq":
      // Explicit raises are one UID each (EffectsCollector.modseq).
      return e.explicit ? { type: "modseq", uid: e.uid1, modseq: e.modseq } : undefined;
    case "attribute":
      return { type: "attribute", key: e.key, scope: e.scope, action: e.action };
    case "mailbox-deleted":
      return e.external ? { type: "mailbox-deleted" } : undefined;
    case "mailbox-undeleted":
      return { type: "mailbox-undeleted" };
    default:
      return assertNever(e);
  }
}

