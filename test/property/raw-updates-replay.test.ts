/**
 * A replay from a reusing scan applies FLAG_UPDATE and KEYWORD_UPDATE
 * records from the log's bytes (RawFlagUpdate, RawKeywordUpdate); a plain
 * scan decodes them into objects, which applyTransaction folds. On random
 * logs of appends, flag updates and keyword updates (names in several
 * spellings, ranges past the last message), both must give the same
 * dovecot.index bytes; on the same logs with one byte changed, the same
 * outcome (the same state, or the same LogCorruptedError at the same place).
 *
 * Logs of 300-900 keyword updates, over ~90 names, cross the replay's
 * draft batches (REPLAY_BATCH) while registering new keywords.
 *
 * Failures print fast-check's seed and path; rerun one with
 * PROP_SEED=<seed> PROP_PATH=<path> npx vitest run test/property/raw-updates-replay.test.ts
 * (the long logs' test prints its seed: PROP_SEED=<seed> starts from it;
 * PROP_LONG_RUNS sets how many logs it builds).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { prng } from "../../campaign/lib/rng.js";
import { encodeTransaction } from "../../src/log/encode-file.js";
import { scanTransactions } from "../../src/log/file.js";
import { decodeLogHeader, encodeLogHeader } from "../../src/log/header.js";
import type { LogRecord, LogTransaction, UidRange } from "../../src/log/types.js";
import { applyTransaction } from "../../src/projections/apply.js";
import { encodeIndexFile } from "../../src/projections/index-file.js";
import { highestModseq, keywordNames } from "../../src/projections/read.js";
import { emptyIndexMap, type IndexMapState } from "../../src/projections/state.js";
import { LogCorruptedError } from "../../src/shared/errors.js";
import { enableModseq } from "../unit/projections/log-builder.js";
import { replayScan } from "../helpers/replay-scan.js";

const SEED = Number(process.env.PROP_SEED ?? 20261208);
const PATH = process.env.PROP_PATH;
const RUNS = Number(process.env.PROP_RUNS ?? 200);

const header = { indexId: 0x65000000, fileSeq: 1, prevFileSeq: 0, prevFileOffset: 0, createStamp: 0x65000000, initialModseq: 1n };
const int = { external: false, sync: false };
/** Spellings that fold to the same keyword, and a few others. */
const NAMES = ["$Label1", "$label1", "$LABEL1", "$Label2", "$Label12", "kw0", "KW0", "a", "b", "$Junk"];
/** Flag bits, DIRTY and a non-IMAP bit included. */
const FLAG = fc.constantFrom(0, 1, 2, 4, 8, 16, 0x20, 0x40, 0x80, 8 | 4, 0x80 | 8);

const ranges = (maxUid: number): fc.Arbitrary<UidRange[]> =>
  fc.uniqueArray(fc.integer({ min: 1, max: maxUid }), { minLength: 1, maxLength: 6 }).map((xs) => {
    const sorted = xs.sort((a, b) => a - b);
    const out: UidRange[] = [];
    // Pairs of the sorted uids, and a single uid for an odd one out.
    for (let i = 0; i < sorted.length; i += 2) out.push({ uid1: sorted[i], uid2: sorted[Math.min(i + 1, sorted.length - 1)] });
    return out;
  });

const flagUpdate = (maxUid: number): fc.Arbitrary<LogRecord> =>
  ranges(maxUid).chain((rs) =>
    fc.tuple(...rs.map(() => fc.tuple(FLAG, FLAG, fc.constantFrom(0, 0, 1)))).map((fl) => ({
      type: "flag-update" as const, ...int,
      updates: rs.map((r, i) => ({ ...r, addFlags: fl[i][0], removeFlags: fl[i][1], modseqIncFlag: fl[i][2] })),
    })),
  );

const keywordUpdate = (maxUid: number): fc.Arbitrary<LogRecord> =>
  fc.tuple(fc.constantFrom("add" as const, "remove" as const), fc.constantFrom(...NAMES), ranges(maxUid)).map(([modifyType, name, rs]) => ({
    type: "keyword-update" as const, ...int, modifyType, name, ranges: rs,
  }));

/** A log: modseqs on or off, an append of 1-40 messages, then transactions of flag and keyword updates. */
const logArb = fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 40 })).chain(([withModseq, count]) =>
  fc.tuple(
    fc.constant(withModseq),
    fc.array(FLAG, { minLength: count, maxLength: count }),
    fc.array(fc.array(fc.oneof(flagUpdate(count + 3), keywordUpdate(count + 3)), { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 30 }),
  ),
);

/**
 * About 90 keyword names for the long logs: spellings that fold together
 * (café/CAFé fold, CAFÉ does not: ASCII case only), same-length names
 * sharing their last bytes (the name cache's slot is a hash of the length
 * and the last two bytes, so these replace each other there), names over
 * 16 bytes, and names of high latin1 bytes.
 */
const LONG_NAMES = [
  ...["$Label1", "$label1", "$LABEL1", "$Label2", "$Label12", "$Junk", "$junk", "$NotJunk", "kw0", "KW0"],
  ...[..."abcdefghijklmnopqrst"].map((c) => `${c}xyz`),
  ...["Axyz", "BXYZ", "qq", "rq", "sq", "Qq"],
  ...Array.from({ length: 12 }, (_, i) => `$VeryLongKeywordName${String(i).padStart(2, "0")}`),
  ...Array.from({ length: 10 }, (_, i) => `${String.fromCharCode(0x61 + i)}-longer-than-sixteen-bytes-end`),
  ...["$verylongkeywordname00", "$VERYLONGKEYWORDNAME01", "A-LONGER-THAN-SIXTEEN-BYTES-END"],
  ...["café", "CAFé", "CAFÉ", "cafÉ", "naïve", "NAïVE", "ñandú", "Ñandú", "\xff\xfe", "\xfe\xfe", "\xe9\xe9\xe9", "\xc9\xe9\xe9"],
  ...["x", "y", "X", "é", "É", "\xff", "1", "$", "$Forwarded", "$forwarded", "$MDNSent", "$mdnsent", "$Phishing"],
];
const LONG_RUNS = Number(process.env.PROP_LONG_RUNS ?? 6);

/**
 * A log of 300-900 transactions of 1-3 keyword updates (a flag update now
 * and then), names drawn from a prefix of LONG_NAMES that grows over the
 * log, so that every one of the replay's draft batches (REPLAY_BATCH, 256)
 * registers keywords of its own while the name cache remembers the indexes
 * found in earlier ones.
 */
function longKeywordLog(seed: number): [boolean, number[], LogRecord[][]] {
  const rnd = prng(seed);
  const pick = (n: number): number => Math.floor(rnd() * n);
  const count = 1 + pick(60);
  const maxUid = count + 3;
  const rangesOf = (): UidRange[] => {
    const uids = [...new Set(Array.from({ length: 1 + pick(6) }, () => 1 + pick(maxUid)))].sort((a, b) => a - b);
    const out: UidRange[] = [];
    for (let i = 0; i < uids.length; i += 2) out.push({ uid1: uids[i], uid2: uids[Math.min(i + 1, uids.length - 1)] });
    return out;
  };
  const total = 300 + pick(601);
  const txs: LogRecord[][] = [];
  for (let t = 0; t < total; t++) {
    // From 4 names at the start to all of them by the last tenth of the log.
    const known = Math.min(LONG_NAMES.length, 4 + Math.floor(((LONG_NAMES.length - 4) * t) / (total * 0.9)));
    const tx: LogRecord[] = [];
    for (let n = 1 + pick(3); n > 0; n--) {
      if (rnd() < 0.1) {
        tx.push({ type: "flag-update", ...int, updates: rangesOf().map((r) => ({ ...r, addFlags: 1 << pick(8), removeFlags: 1 << pick(8), modseqIncFlag: pick(2) })) });
        continue;
      }
      // Mostly the newest names: a batch meets names that earlier batches have not registered.
      const at = rnd() < 0.5 ? known - 1 - pick(Math.min(known, 6)) : pick(known);
      tx.push({ type: "keyword-update", ...int, modifyType: rnd() < 0.7 ? "add" : "remove", name: LONG_NAMES[at], ranges: rangesOf() });
    }
    txs.push(tx);
  }
  return [rnd() < 0.5, Array.from({ length: count }, () => pick(0x20)), txs];
}

/** For each keyword (ASCII case folded), the index of the first update transaction naming it. */
function firstSeenAt(txs: LogRecord[][]): number[] {
  const first = new Map<string, number>();
  txs.forEach((tx, t) => {
    for (const r of tx) {
      const folded = r.type === "keyword-update" ? r.name.replace(/[A-Z]/g, (c) => c.toLowerCase()) : undefined;
      if (folded !== undefined && !first.has(folded)) first.set(folded, t);
    }
  });
  return [...first.values()];
}

function logBytes([withModseq, flags, updates]: [boolean, number[], LogRecord[][]]): Uint8Array {
  const first: LogRecord[] = [
    ...(withModseq ? enableModseq(1n) : []),
    // Only uid and the IMAP flags on append: a DIRTY or \Seen count is what the updates test.
    { type: "append", external: true, sync: false, messages: flags.map((f, i) => ({ uid: i + 1, flags: f & 0x1f })) },
  ];
  return Buffer.concat([encodeLogHeader(header), encodeTransaction(first), ...updates.map((t) => encodeTransaction(t))]);
}

/** The plain path: decoded transactions folded one by one with applyTransaction. */
function folded(bytes: Uint8Array): IndexMapState | LogCorruptedError {
  const h = decodeLogHeader(bytes, "t.log");
  try {
    const txs: LogTransaction[] = [];
    scanTransactions(bytes, h, "t.log", (tx) => txs.push(tx));
    let state = emptyIndexMap({ indexId: h.indexId });
    for (const tx of txs) state = applyTransaction(state, tx);
    return state;
  } catch (err) {
    if (err instanceof LogCorruptedError) return err;
    throw err;
  }
}

/** An outcome in comparable form: the error's class, message and place, or the state's dovecot.index bytes, highest modseq and keyword names. */
function outcome(result: IndexMapState | LogCorruptedError): unknown {
  if (result instanceof LogCorruptedError) return { error: result.constructor.name, message: result.message, details: { ...result } };
  return { index: Buffer.from(encodeIndexFile(result)).toString("hex"), highest: highestModseq(result), keywords: keywordNames(result) };
}

describe("flag and keyword updates applied from the log's bytes (reusing scan) and from decoded objects", () => {
  it("give the same state as applyTransaction over a plain scan (property)", () => {
    fc.assert(
      fc.property(logArb, (log) => {
        const bytes = logBytes(log);
        expect(outcome(replayScan(bytes, true))).toEqual(outcome(folded(bytes)));
      }),
      { seed: SEED, numRuns: RUNS, path: PATH, verbose: 1 },
    );
  });

  it("give the same outcome with one byte of the records changed (property)", () => {
    fc.assert(
      fc.property(logArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (log, at, xor) => {
        const bytes = logBytes(log);
        const hdrSize = decodeLogHeader(bytes, "t.log").hdrSize;
        bytes[hdrSize + (at % (bytes.length - hdrSize))] ^= xor;
        expect(outcome(replayScan(bytes, true))).toEqual(outcome(replayScan(bytes, false)));
      }),
      { seed: SEED + 1, numRuns: RUNS, path: PATH, verbose: 1 },
    );
  });

  it("give the same state over logs of hundreds of keyword updates, across the replay's draft batches (seeded)", () => {
    for (let run = 0; run < LONG_RUNS; run++) {
      const seed = (SEED + run) >>> 0;
      const log = longKeywordLog(seed);
      const bytes = logBytes(log);
      const message = `seed ${seed} (${log[2].length} transactions, modseqs ${log[0] ? "on" : "off"}): rerun with PROP_SEED=${seed}`;
      const plain = folded(bytes);
      expect(outcome(replayScan(bytes, true)), message).toEqual(outcome(plain));
      // The log is what it is for: most names registered, the last ones in the last quarter of the log, past the first draft batch.
      expect(plain, message).not.toBeInstanceOf(LogCorruptedError);
      expect(keywordNames(plain as IndexMapState).length, message).toBeGreaterThan(50);
      expect(Math.max(...firstSeenAt(log[2])), message).toBeGreaterThanOrEqual(Math.max(256, log[2].length * 0.75));
    }
  });

  it("rejects a keyword name with a NUL in it either way", () => {
    const bytes = logBytes([false, [0, 0], [[{ type: "keyword-update", ...int, modifyType: "add", name: "a\0b", ranges: [{ uid1: 1, uid2: 1 }] }]]]);
    const raw = replayScan(bytes, true);
    expect(raw).toBeInstanceOf(LogCorruptedError);
    expect((raw as Error).message).toMatch(/invalid keyword name/);
    expect(outcome(raw)).toEqual(outcome(replayScan(bytes, false)));
  });
});
