/**
 * The mailbox state a seed describes (ShippedSeed), for a change stream
 * that folds the commits after it (remote-changes.ts): a seed carries no
 * log bytes, so the state is folded from records that say what it says,
 * as a replica's seed transactions do (seed-records.ts): modseqs enabled
 * when the primary keeps them, the primary's keywords registered in its
 * order, the messages appended with their UIDs and flags, their keywords
 * added, their modseqs raised to the primary's, UIDVALIDITY and the next
 * UID set; all as one transaction ending at the seed's position with the
 * primary's modseq there. The commits after the seed then fold onto it as
 * onto the primary's own state.
 */
import { toRanges } from "../api/uid-ranges.js";
import type { LogEntry, LogRecord, LogTransaction } from "../log/types.js";
import { advance } from "../projections/apply.js";
import { emptyIndexMap, type IndexMapState } from "../projections/state.js";
import { headerUpdateRecord } from "../api/mailbox-update.js";
import { modseqEnableRecords } from "../api/mailbox-modseqs.js";
import { keywordRegistrationRecords } from "./seed-records.js";
import type { SeededMessage, SeededModseq, ShippedCommit } from "./wire.js";

/** Collects a seed's parts, in subject order, until its last. */
export class SeedCollector {
  private messages: SeededMessage[] = [];
  private modseqs: SeededModseq[] = [];

  /**
   * Adds seed part `c`. Part 0 starts over (a seed published again whole,
   * after a writer was cut between parts).
   * @returns the seeded state once `c` is the last part.
   */
  add(c: ShippedCommit): IndexMapState | undefined {
    const seed = c.seed!;
    if (seed.part === 0) {
      this.messages = [];
      this.modseqs = [];
    }
    this.messages.push(...seed.messages);
    this.modseqs.push(...seed.modseqs);
    return seed.last ? seededState(c, this.messages, this.modseqs) : undefined;
  }
}

/** The state seed `last` (its last part) describes, with the messages and modseqs of all its parts. */
function seededState(last: ShippedCommit, messages: readonly SeededMessage[], modseqs: readonly SeededModseq[]): IndexMapState {
  const seed = last.seed!;
  const ranges = toRanges(messages.map((m) => m.uid));
  const records: LogRecord[] = [
    ...(seed.tracksModseqs ? modseqEnableRecords(0n) : []),
    ...keywordRegistrationRecords(seed.keywords, ranges),
    { type: "append", external: false, sync: false, messages: messages.map((m) => ({ uid: m.uid, flags: m.flags })) },
    ...seed.keywords.map((name): LogRecord => ({
      type: "keyword-update", external: false, sync: false, modifyType: "add", name, ranges: toRanges(messages.filter((m) => m.keywords.includes(name)).map((m) => m.uid)),
    })),
    ...(modseqs.length > 0 ? [{ type: "modseq-update", external: false, sync: false, updates: modseqs.map((m) => ({ uid: m.uid, modseq: m.modseq })) } as LogRecord] : []),
    headerUpdateRecord({ uidValidity: last.uidValidity, nextUid: seed.nextUid }),
  ];
  // Each change stamps the lowest modseq: the modseq updates then raise every message to the primary's.
  const entries: LogEntry[] = records.map((record) => ({ position: last.end, size: 0, modseq: 1n, record }));
  const tx: LogTransaction = { position: { fileSeq: last.end.fileSeq, offset: 0 }, end: last.end, entries, modseq: last.modseq, external: false, framed: false };
  return advance(emptyIndexMap(), [tx]);
}
