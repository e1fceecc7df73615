import type { LogPosition, LogRecord, LogTransaction } from "./log/types.js";
import { flagNames } from "./flags.js";

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

/** The changes a transaction describes. Storage-internal records (extensions, header) are omitted. */
export function changeBatchOf(tx: LogTransaction): ChangeBatch {
  const changes: MailboxChange[] = [];
  for (const entry of tx.entries) changes.push(...changesOf(entry.record));
  return { position: tx.position, end: tx.end, modseq: tx.modseq, external: tx.external, changes };
}

function changesOf(r: LogRecord): MailboxChange[] {
  switch (r.type) {
    case "append":
      return r.messages.map((m) => ({ type: "append", uid: m.uid, flags: flagNames(m.flags) }));
    case "flag-update":
      return r.updates
        .filter((u) => ((u.addFlags | u.removeFlags) & 0x1f) !== 0)
        .map((u) => ({ type: "flags", uid1: u.uid1, uid2: u.uid2, add: flagNames(u.addFlags), remove: flagNames(u.removeFlags) }));
    case "keyword-update":
      return r.ranges.map((x) => ({ type: "keywords", uid1: x.uid1, uid2: x.uid2, keyword: r.name, action: r.modifyType }));
    case "keyword-reset":
      return r.ranges.map((x) => ({ type: "keywords-reset", uid1: x.uid1, uid2: x.uid2 }));
    case "expunge":
      return r.ranges.map((x) => ({ type: r.external ? "expunge" : "expunge-request", uid1: x.uid1, uid2: x.uid2 }));
    case "expunge-guid":
      return r.expunges.map((e) => ({ type: r.external ? "expunge" : "expunge-request", uid1: e.uid, uid2: e.uid }));
    case "modseq-update":
      return r.updates.filter((u) => u.uid !== 0).map((u) => ({ type: "modseq", uid: u.uid, modseq: u.modseq }));
    case "attribute-update":
      return r.changes.map((c) => ({ type: "attribute", key: c.key, scope: c.scope === "p" ? "private" : "shared", action: c.op === "+" ? "set" : "unset" }));
    case "index-deleted":
      return r.external ? [{ type: "mailbox-deleted" }] : [];
    case "index-undeleted":
      return [{ type: "mailbox-undeleted" }];
    default:
      return [];
  }
}
