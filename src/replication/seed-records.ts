/**
 * The log records that say what a seed (ShippedSeed) says, shared by the
 * replica that applies one to its store (apply.ts) and the change stream
 * that folds one into a state (seeded-state.ts).
 */
import type { LogRecord, UidRange } from "../log/types.js";

/**
 * Registers keywords `names` in this order. A keyword record registers its
 * name whatever it does (Dovecot's keyword sync adds the name first): a
 * remove from `ranges`, UIDs not there yet, changes no message.
 */
export function keywordRegistrationRecords(names: readonly string[], ranges: UidRange[]): LogRecord[] {
  return names.map((name): LogRecord => ({ type: "keyword-update", external: false, sync: false, modifyType: "remove", name, ranges }));
}
