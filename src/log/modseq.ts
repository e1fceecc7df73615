import { assertNever } from "../shared/errors.js";
import { isInternalFlagUpdate } from "./records/flag-update.js";
import type { LogFileHeader, LogRecord } from "./types.js";

/** Dovecot counts in a uint64_t: past its largest value the counter wraps to 0. */
const U64_MAX = 0xffffffffffffffffn;
const inc = (counter: bigint): bigint => (counter === U64_MAX ? 0n : counter + 1n);

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
      return record.external ? inc(counter) : counter;
    case "append":
    case "keyword-update":
    case "keyword-reset":
    case "attribute-update":
      return inc(counter);
    case "flag-update": {
      const hidesInternal = header.majorVersion > 1 || header.minorVersion >= 3;
      if (!hidesInternal) return inc(counter);
      return record.updates.some((u) => !isInternalFlagUpdate(u)) ? inc(counter) : counter;
    }
    case "modseq-update": {
      let max = counter;
      for (const u of record.updates) if (u.modseq > max) max = u.modseq;
      return max;
    }
    // Records that change no message's modseq.
    case "header-update":
    case "ext-intro":
    case "ext-reset":
    case "ext-hdr":
    case "ext-hdr32":
    case "ext-rec":
    case "ext-atomic-inc":
    case "index-deleted":
    case "index-undeleted":
    case "boundary":
      return counter;
    default:
      return assertNever(record);
  }
}
