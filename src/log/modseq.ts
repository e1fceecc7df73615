import { assertNever } from "../shared/errors.js";
import { isInternalFlagUpdate, RawFlagUpdate } from "./records/flag-update.js";
import type { LogFileHeader, LogRecord, LogRecordType } from "./types.js";

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
    case "flag-update": {
      const hidesInternal = header.majorVersion > 1 || header.minorVersion >= 3;
      if (!hidesInternal) return inc(counter);
      // A raw record (a replay's) knows from its check, without objects.
      const moves = record instanceof RawFlagUpdate ? record.movesModseq : record.updates.some((u) => !isInternalFlagUpdate(u));
      return moves ? inc(counter) : counter;
    }
    case "modseq-update": {
      let max = counter;
      for (const u of record.updates) if (u.modseq > max) max = u.modseq;
      return max;
    }
    default:
      return movesModseq(record.type, record.external) ? inc(counter) : counter;
  }
}

/**
 * The counter after a record of `type`, when the type alone tells:
 * undefined when the payload decides (an ext intro while the counter is 0,
 * flag and modseq updates). A scan that only needs the modseq (the log
 * before a checkpoint) decodes just the records this leaves undecided.
 */
export function skimModseq(counter: bigint, type: LogRecordType, external: boolean): bigint | undefined {
  if (counter === 0n) return type === "ext-intro" ? undefined : 0n;
  if (type === "flag-update" || type === "modseq-update") return undefined;
  return movesModseq(type, external) ? inc(counter) : counter;
}

/** Whether a record of `type` (one whose payload does not matter) moves the counter by one. */
function movesModseq(type: Exclude<LogRecordType, "flag-update" | "modseq-update">, external: boolean): boolean {
  switch (type) {
    case "expunge":
    case "expunge-guid":
      return external;
    case "append":
    case "keyword-update":
    case "keyword-reset":
    case "attribute-update":
      return true;
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
      return false;
    default:
      return assertNever(type);
  }
}
