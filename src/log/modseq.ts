import { isInternalFlagUpdate } from "./records/flag-update.js";
import type { LogFileHeader, LogRecord } from "./types.js";

/**
 * The running modseq of one log file (transaction-log.md §8): starts at the
 * header's initial_modseq and moves with each record. Returns the counter
 * after `record`.
 */
export function nextModseq(counter: bigint, record: LogRecord, header: LogFileHeader): bigint {
  if (counter === 0n) {
    // Ancient files: nothing counts until the modseq extension is introduced.
    if (record.type === "ext-intro" && record.intros.some((i) => i.name === "modseq")) return 1n;
    return 0n;
  }
  switch (record.type) {
    case "expunge":
    case "expunge-guid":
      return record.external ? counter + 1n : counter;
    case "append":
    case "keyword-update":
    case "keyword-reset":
    case "attribute-update":
      return counter + 1n;
    case "flag-update": {
      const hidesInternal = header.majorVersion > 1 || header.minorVersion >= 3;
      if (!hidesInternal) return counter + 1n;
      return record.updates.some((u) => !isInternalFlagUpdate(u)) ? counter + 1n : counter;
    }
    case "modseq-update": {
      let max = counter;
      for (const u of record.updates) if (u.modseq > max) max = u.modseq;
      return max;
    }
    default:
      return counter;
  }
}
