/**
 * Dovecot's no-op rule for flag and keyword updates: a change that changes
 * nothing for a message is not logged for it and leaves its MODSEQ (and, when
 * it changes nothing at all, HIGHESTMODSEQ) alone.
 *
 * Twin stores per format: one written by the engine's API, one by doveadm,
 * with the same messages and initial flags; then the same flag commands on
 * both (partly no-ops, pure no-ops, the whole-set rule of keyword updates,
 * a replace where Dovecot 2.3 writes per-keyword removes and no keyword
 * reset). After every step the flag/keyword records appended to each log,
 * the per-message MODSEQ deltas and the HIGHESTMODSEQ delta must agree.
 *
 * Why deltas: the two stores reach the same initial state through different
 * transactions (the engine: one append transaction with flags; doveadm: six
 * saves and four flag commands), so their absolute modseqs differ. What the
 * rule is about is what each command adds, and that is the delta. Before the
 * first step, `doveadm fetch modseq` enables per-message modseqs (the
 * `modseq` extension) in both stores, so from then on each message's modseq
 * is tracked in both.
 */
import * as fs from "node:fs";
import { afterEach, expect, it } from "vitest";
import { flagNames, highestModseq, messageCount, openStorage, recordAt, type FlagAction, type Storage, type UidRange } from "../../src/index.js";
import { createOracle, describeInterop, MAIL_FORMATS, parseFlags, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";

const MESSAGES = 6;
/** Initial flags of uid i+1: some \Seen, some not, some with keywords, some without. */
const INITIAL: readonly (readonly string[])[] = [["\\Seen"], ["\\Seen", "kw1"], ["kw1"], [], ["\\Seen", "\\Flagged", "kw2"], ["\\Flagged"]];

interface Step {
  what: string;
  action: FlagAction;
  flags: string;
  /** doveadm's uid set ("" = all). */
  uids: string;
  /** Nothing may be logged, in either store. */
  noop?: boolean;
}

const STEPS: readonly Step[] = [
  // uids 1, 2, 5 have \Seen already: only 3, 4, 6 are logged.
  { what: "add \\Seen to all, half have it", action: "add", flags: "\\Seen", uids: "" },
  // uids 2 and 3 already are exactly {\Seen kw1}: nothing for them; 5 loses
  // \Flagged and kw2 (a remove record for kw2, no keyword reset).
  { what: "replace with \\Seen kw1, partly a no-op", action: "replace", flags: "\\Seen kw1", uids: "" },
  { what: "pure no-op: add \\Seen to messages that all have it", action: "add", flags: "\\Seen", uids: "", noop: true },
  { what: "pure no-op: remove keywords nobody has (kw2 known, kw9 unknown)", action: "remove", flags: "kw9 kw2", uids: "", noop: true },
  { what: "add a new keyword", action: "add", flags: "kw3", uids: "2:3" },
  { what: "remove kw1 from 2 and 6", action: "remove", flags: "kw1", uids: "2,6" },
  // Whole-set rule: uid 2 lacks kw1 only, 1 and 4 lack kw3 only, 3 has both;
  // 1, 2, 4 get both records (uid 2 ends at kw3's modseq), 3 none. Also: KW1
  // matches kw1 case-insensitively.
  { what: "add KW1 kw3, the keyword set is logged for each message it changes", action: "add", flags: "KW1 kw3", uids: "1:4" },
  // uid 6 is exactly {\Seen}: nothing for it; the others lose their keywords.
  { what: "replace with \\Seen only", action: "replace", flags: "\\Seen", uids: "" },
  { what: "pure no-op: the same replace again", action: "replace", flags: "\\Seen", uids: "", noop: true },
];

/** `1:4` / `2,6` / "" → engine ranges. */
function parseUidSet(set: string): UidRange[] {
  if (set === "") return [{ uid1: 1, uid2: 0xffffffff }];
  return set.split(",").map((part) => {
    const [a, b] = part.split(":").map(Number);
    return { uid1: a, uid2: b ?? a };
  });
}

interface Reading {
  modseqs: Map<number, bigint>;
  flags: Map<number, string[]>;
  highest: bigint;
}

/** doveadm's reading of a store: per-message modseq and flags, and HIGHESTMODSEQ. */
async function doveadmReading(o: DovecotOracle): Promise<Reading> {
  const rows = await o.fetch("uid modseq flags", ["mailbox", "INBOX", "all"]);
  const status = await o.mailboxStatus("highestmodseq", "INBOX");
  return {
    modseqs: new Map(rows.map((r) => [Number(r.uid), BigInt(r.modseq)])),
    flags: new Map(rows.map((r) => [Number(r.uid), parseFlags(r.flags).sort()])),
    highest: BigInt(status.highestmodseq),
  };
}

/** The engine's reading of its own store. */
async function engineReading(storage: Storage): Promise<Reading> {
  const box = await storage.openMailbox("INBOX");
  try {
    const state = await box.refresh();
    const modseqs = new Map<number, bigint>();
    const flags = new Map<number, string[]>();
    for (let seq = 1; seq <= messageCount(state); seq++) {
      const r = recordAt(state, seq)!;
      modseqs.set(r.uid, r.modseq);
      flags.set(r.uid, [...flagNames(r.flags), ...r.keywords].sort());
    }
    return { modseqs, flags, highest: highestModseq(state) };
  } finally {
    await box.close();
  }
}

/** Per-message modseq growth from `before` to `after`, and HIGHESTMODSEQ's. */
function deltas(before: Reading, after: Reading): { perMessage: Record<number, number>; highest: number } {
  const perMessage: Record<number, number> = {};
  for (const [uid, m] of after.modseqs) perMessage[uid] = Number(m - before.modseqs.get(uid)!);
  return { perMessage, highest: Number(after.highest - before.highest) };
}

interface LogMark {
  fileSeq: string | number;
  size: number;
}

async function logMark(o: DovecotOracle): Promise<LogMark> {
  const dump = await o.dumpLog(o.mailboxLogPath("INBOX"));
  return { fileSeq: dump.header["file seq"], size: fs.statSync(o.mailboxLogPath("INBOX")).size };
}

/**
 * The flag and keyword records the command appended to the log since `mark`,
 * as doveadm prints them (offsets and modseqs left out). EXTERNAL records are
 * the storage's own syncing, not the command: mbox marks messages dirty
 * (+0x80) and clean again around rewriting their Status headers; those
 * change no modseq (modseq deltas are compared separately).
 */
async function flagRecordsSince(o: DovecotOracle, mark: LogMark): Promise<string[]> {
  const dump = await o.dumpLog(o.mailboxLogPath("INBOX"));
  // Rotation would move the records to .log.2; these logs stay far below any rotation size.
  expect(dump.header["file seq"], "log rotated during a step").toEqual(mark.fileSeq);
  return dump.records
    .filter((r) => r.offset >= mark.size && !r.external && ["flag-update", "keyword-update", "keyword-reset"].includes(r.type))
    .map((r) => `${r.type}: ${r.lines.join("; ")}`);
}

describeInterop("no-op flag and keyword updates leave MODSEQ alone, as in Dovecot", () => {
  let ours: DovecotOracle | undefined;
  let theirs: DovecotOracle | undefined;
  let storage: Storage | undefined;
  afterEach(async () => {
    await storage?.close();
    await ours?.cleanup();
    await theirs?.cleanup();
    storage = ours = theirs = undefined;
  });

  for (const format of MAIL_FORMATS) {
    it(`${format}: engine store and doveadm store log the same records and grow the same MODSEQs`, async () => {
      // The engine writes its store as root; doveadm (also when only reading:
      // the fetch below adds the modseq extension) needs it owned by 65534.
      ours = createOracle(format, { autoChown: true });
      theirs = createOracle(format);
      storage = openStorage(ours.location);

      const box = await storage.openMailbox("INBOX");
      const tx = box.transaction();
      for (let i = 0; i < MESSAGES; i++) tx.append({ body: sampleMessage(i + 1), flags: INITIAL[i] });
      await tx.commit();
      await box.close();

      for (let i = 0; i < MESSAGES; i++) await theirs.save("INBOX", sampleMessage(i + 1));
      await theirs.flags("add", "\\Seen", "mailbox INBOX uid 1,2,5");
      await theirs.flags("add", "kw1", "mailbox INBOX uid 2:3");
      await theirs.flags("add", "\\Flagged", "mailbox INBOX uid 5:6");
      await theirs.flags("add", "kw2", "mailbox INBOX uid 5");

      let ourBefore = await doveadmReading(ours);
      let theirBefore = await doveadmReading(theirs);
      expect(ourBefore.flags).toEqual(theirBefore.flags);
      expect(ourBefore.flags.get(5)).toEqual(["\\Flagged", "\\Seen", "kw2"]);

      for (const step of STEPS) {
        const why = `${format}, ${step.what}`;
        const ourMark = await logMark(ours);
        const theirMark = await logMark(theirs);

        const b = await storage.openMailbox("INBOX");
        const positionBefore = b.position;
        const result = await b.transaction().flags(parseUidSet(step.uids), step.action, step.flags.split(" ")).commit();
        // The engine's own sync (refresh) writes the logged requests into the
        // mail files before doveadm looks, as doveadm's command does in its
        // own store. mbox needs it: left pending, Dovecot's sync of the
        // engine's mbox drops a keyword added to uid 1 (the X-IMAPbase
        // message) and logs that as an EXTERNAL keyword remove — a separate
        // problem of pending mbox requests, not of the no-op rule.
        await b.refresh();
        await b.close();
        await theirs.flags(step.action, step.flags, ["mailbox", "INBOX", ...(step.uids === "" ? ["all"] : ["uid", step.uids])]);

        const ourRecords = await flagRecordsSince(ours, ourMark);
        const theirRecords = await flagRecordsSince(theirs, theirMark);
        expect(ourRecords, why).toEqual(theirRecords);
        expect(theirRecords.some((r) => r.startsWith("keyword-reset")), why).toBe(false);
        if (step.noop) {
          expect(theirRecords, why).toEqual([]);
          // The commit writes no transaction of its own. Its file sync may
          // log one piece of bookkeeping, as Dovecot's does: when cur/ was
          // renamed into within the second the last sync looked, the next
          // sync in a later second rescans it and records the new check time
          // in the maildir extension header (EXTERNAL ext-hdr, no modseq).
          expect(result.end, why).toEqual(result.start);
          const bookkeeping = (await ours.dumpLog(ours.mailboxLogPath("INBOX"))).records.filter((r) => r.offset >= ourMark.size);
          const isBookkeeping = (r: (typeof bookkeeping)[number]): boolean =>
            r.external &&
            (["boundary", "ext-intro", "ext-hdr"].includes(r.type) || (r.type === "header-update" && r.lines.every((l) => l.startsWith("log_file_tail_offset"))));
          expect(bookkeeping.filter((r) => !isBookkeeping(r)), why).toEqual([]);
          if (bookkeeping.length === 0) expect(result.start, why).toEqual(positionBefore);
        } else {
          expect(theirRecords.length, why).toBeGreaterThan(0);
        }

        const ourAfter = await doveadmReading(ours);
        const theirAfter = await doveadmReading(theirs);
        expect(ourAfter.flags, why).toEqual(theirAfter.flags);
        const ourDelta = deltas(ourBefore, ourAfter);
        expect(ourDelta, why).toEqual(deltas(theirBefore, theirAfter));
        if (step.noop) expect(ourDelta.highest, why).toBe(0);

        // The engine reads its own store as doveadm does.
        const engine = await engineReading(storage);
        expect(engine, why).toEqual(ourAfter);
        ourBefore = ourAfter;
        theirBefore = theirAfter;
      }

      // Where it all ends: every message \Seen, no keywords.
      expect([...theirBefore.flags.values()]).toEqual(Array(MESSAGES).fill(["\\Seen"]));
      ours.assertNoStderrProblems();
      theirs.assertNoStderrProblems();
    }, 120_000);
  }
});
