/**
 * The index map fold against a plain model (Map uid → {flags, keywords,
 * modseq}) under random operation sequences, with checkpoints
 * (encodeIndexFile → decodeIndexFile) taken at random points: continuing
 * from a checkpoint must give exactly the bytes of a full replay.
 *
 * Failures print fast-check's seed and path; rerun one with
 * PROP_SEED=<seed> PROP_PATH=<path> npx vitest run test/property/projections-replay.test.ts
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MailFlag, MAIL_FLAGS_NONRECENT, type LogRecord, type LogTransaction } from "../../src/log/types.js";
import { applyTransaction, replay, withLogModseq } from "../../src/projections/apply.js";
import { decodeIndexFile, encodeIndexFile } from "../../src/projections/index-file.js";
import { getHeader, highestModseq, keywordNames, messageCount, recordAt } from "../../src/projections/read.js";
import { emptyIndexMap, type IndexMapState } from "../../src/projections/state.js";
import { enableModseq, HDR, LogBuilder, R } from "../unit/projections/log-builder.js";

const SEED = Number(process.env.PROP_SEED ?? 20240611);
const PATH = process.env.PROP_PATH;
const RUNS = Number(process.env.PROP_RUNS ?? 100);

const KEYWORD_POOL = ["$Label1", "$Label2", "foo", "Bar", "$Junk", ...Array.from({ length: 15 }, (_, i) => `kw${i}`)];

interface ModelMessage {
  flags: number;
  keywords: Set<string>; // lower-cased names
  modseq: bigint;
}

interface Model {
  messages: Map<number, ModelMessage>;
  nextUid: number;
  /** Registered keyword names in index order, as first spelled. */
  keywordNames: string[];
  modseqEnabled: boolean;
  /**
   * The modseq extension header's highest_modseq: Dovecot raises it only for
   * changes that reach an existing message (an expunge of nothing, or a flag
   * update of unknown uids, moves the log's counter but not this).
   */
  highest: bigint;
}

interface Real {
  builder: LogBuilder;
  state: IndexMapState;
  /** Every transaction so far, for the final full replay. */
  txs: LogTransaction[];
  checkpoints: number;
}

function commit(real: Real, records: LogRecord[]): LogTransaction {
  const tx = real.builder.tx(...records);
  real.state = applyTransaction(real.state, tx);
  real.txs.push(tx);
  return tx;
}

function uidsIn(model: Model, uid1: number, uid2: number): ModelMessage[] {
  const out: ModelMessage[] = [];
  for (let uid = uid1; uid <= Math.min(uid2, model.nextUid); uid++) {
    const m = model.messages.get(uid);
    if (m !== undefined) out.push(m);
  }
  return out;
}

function raise(model: Model, m: ModelMessage, modseq: bigint): void {
  if (!model.modseqEnabled) return;
  if (m.modseq < modseq) m.modseq = modseq;
  if (model.highest < modseq) model.highest = modseq;
}

function registerKeyword(model: Model, name: string): void {
  if (!model.keywordNames.some((k) => k.toLowerCase() === name.toLowerCase())) model.keywordNames.push(name);
}

/**
 * Compares what the model knows with the real state: every message while the
 * mailbox is small, a sample of them after bulk appends (`full` at the end).
 */
function check(model: Model, real: Real, full = false): void {
  const s = real.state;
  const uids = [...model.messages.keys()].sort((a, b) => a - b);
  expect(messageCount(s)).toBe(uids.length);
  const h = getHeader(s);
  expect(h.nextUid).toBe(model.nextUid);
  expect(h.seenMessagesCount).toBe([...model.messages.values()].filter((m) => m.flags & MailFlag.SEEN).length);
  expect(h.deletedMessagesCount).toBe([...model.messages.values()].filter((m) => m.flags & MailFlag.DELETED).length);
  expect(keywordNames(s)).toEqual(model.keywordNames);
  const highest = highestModseq(s);
  expect(highest).toBe(model.modseqEnabled ? model.highest : real.builder.modseq);
  // One comparison per message without expect() (which is slow per call); report the first difference.
  for (let i = 0; i < uids.length; i++) {
    if (!full && uids.length > 300 && i % 37 !== 0 && i !== uids.length - 1) continue;
    const m = model.messages.get(uids[i])!;
    const r = recordAt(s, i + 1)!;
    const want = `${uids[i]} ${m.flags} ${[...m.keywords].sort().join(",")} ${model.modseqEnabled ? m.modseq : highest}`;
    const got = `${r.uid} ${r.flags} ${r.keywords.map((k) => k.toLowerCase()).sort().join(",")} ${r.modseq}`;
    if (got !== want) expect(`seq ${i + 1}: ${got}`).toBe(`seq ${i + 1}: ${want}`);
  }
}

/** Byte equality with the first differing offset in the failure (toEqual on big arrays is slow). */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  if (Buffer.from(actual.buffer, actual.byteOffset, actual.length).equals(Buffer.from(expected.buffer, expected.byteOffset, expected.length))) return;
  let i = 0;
  while (i < Math.min(actual.length, expected.length) && actual[i] === expected[i]) i++;
  expect(`length ${actual.length}, first difference at ${i}: ${actual[i]}`).toBe(`length ${expected.length}, first difference at ${i}: ${expected[i]}`);
}

type Cmd = fc.Command<Model, Real>;

class AppendCmd implements Cmd {
  constructor(readonly flags: number[]) {}
  check = () => true;
  run(model: Model, real: Real): void {
    const msgs = this.flags.map((f, i) => [model.nextUid + i, f] as const);
    const tx = commit(real, [R.append(msgs)]);
    for (const [uid, flags] of msgs) model.messages.set(uid, { flags, keywords: new Set(), modseq: tx.modseq });
    if (model.modseqEnabled) model.highest = tx.modseq;
    model.nextUid += msgs.length;
    check(model, real);
  }
  toString = () => `append(${this.flags.join(",")})`;
}

/** Enough messages to span several 1024-record leaves of the record store. */
class BulkAppendCmd implements Cmd {
  constructor(readonly count: number, readonly seen: boolean) {}
  check = (model: Readonly<Model>) => model.messages.size < 4000;
  run(model: Model, real: Real): void {
    const flags = this.seen ? MailFlag.SEEN : 0;
    const msgs = Array.from({ length: this.count }, (_, i) => [model.nextUid + i, flags] as const);
    const tx = commit(real, [R.append(msgs)]);
    for (const [uid] of msgs) model.messages.set(uid, { flags, keywords: new Set(), modseq: tx.modseq });
    if (model.modseqEnabled) model.highest = tx.modseq;
    model.nextUid += this.count;
    check(model, real);
  }
  toString = () => `bulkAppend(${this.count})`;
}

class FlagsCmd implements Cmd {
  constructor(readonly uid1: number, readonly len: number, readonly mode: "add" | "remove" | "replace", readonly mask: number, readonly keyword?: [boolean, string]) {}
  check = () => true;
  run(model: Model, real: Real): void {
    const uid2 = this.uid1 + this.len;
    const add = this.mode === "remove" ? 0 : this.mask;
    const remove = this.mode === "add" ? 0 : this.mode === "remove" ? this.mask : ~this.mask & MAIL_FLAGS_NONRECENT;
    const records: LogRecord[] = [R.flags(this.uid1, uid2, add, remove)];
    if (this.keyword) records.push(R.keyword(this.keyword[0] ? "add" : "remove", this.keyword[1], [[this.uid1, uid2]]));
    const tx = real.builder.tx(...records);
    real.state = applyTransaction(real.state, tx);
    real.txs.push(tx);
    const [flagEntry, kwEntry] = tx.entries;
    for (const m of uidsIn(model, this.uid1, uid2)) {
      m.flags = (m.flags & ~remove) | add;
      if ((add | remove) !== 0) raise(model, m, flagEntry.modseq);
    }
    if (this.keyword) {
      const [isAdd, name] = this.keyword;
      registerKeyword(model, name);
      for (const m of uidsIn(model, this.uid1, uid2)) {
        if (isAdd) m.keywords.add(name.toLowerCase());
        else m.keywords.delete(name.toLowerCase());
        raise(model, m, kwEntry.modseq);
      }
    }
    check(model, real);
  }
  toString = () => `flags(${this.uid1}+${this.len} ${this.mode} ${this.mask}${this.keyword ? ` kw ${this.keyword.join(" ")}` : ""})`;
}

class KeywordCmd implements Cmd {
  constructor(readonly add: boolean, readonly name: string, readonly uid1: number, readonly len: number) {}
  check = () => true;
  run(model: Model, real: Real): void {
    const uid2 = this.uid1 + this.len;
    const tx = commit(real, [R.keyword(this.add ? "add" : "remove", this.name, [[this.uid1, uid2]])]);
    registerKeyword(model, this.name);
    for (const m of uidsIn(model, this.uid1, uid2)) {
      if (this.add) m.keywords.add(this.name.toLowerCase());
      else m.keywords.delete(this.name.toLowerCase());
      raise(model, m, tx.modseq);
    }
    check(model, real);
  }
  toString = () => `keyword(${this.add ? "+" : "-"}${this.name} ${this.uid1}+${this.len})`;
}

class KeywordResetCmd implements Cmd {
  constructor(readonly uid1: number, readonly len: number) {}
  check = () => true;
  run(model: Model, real: Real): void {
    const uid2 = this.uid1 + this.len;
    const tx = commit(real, [R.keywordReset([[this.uid1, uid2]])]);
    // Without a keywords extension a reset does nothing at all (no modseq either).
    if (model.keywordNames.length > 0) {
      for (const m of uidsIn(model, this.uid1, uid2)) {
        m.keywords.clear();
        raise(model, m, tx.modseq);
      }
    }
    check(model, real);
  }
  toString = () => `keywordReset(${this.uid1}+${this.len})`;
}

class ExpungeCmd implements Cmd {
  constructor(readonly uid1: number, readonly len: number, readonly external: boolean, readonly byGuid: boolean) {}
  check = () => true;
  run(model: Model, real: Real): void {
    const uid2 = this.uid1 + this.len;
    const uids = Array.from({ length: this.len + 1 }, (_, i) => this.uid1 + i);
    const tx = commit(real, [this.byGuid ? R.expungeGuid(uids, this.external) : R.expunge([[this.uid1, uid2]], this.external)]);
    if (this.external && uids.some((uid) => model.messages.has(uid))) {
      for (const uid of uids) model.messages.delete(uid);
      if (model.modseqEnabled) model.highest = tx.modseq;
    }
    check(model, real);
  }
  toString = () => `expunge(${this.uid1}+${this.len}${this.external ? " ext" : ""}${this.byGuid ? " guid" : ""})`;
}

class CheckpointCmd implements Cmd {
  check = () => true;
  run(model: Model, real: Real): void {
    const bytes = encodeIndexFile(real.state);
    const decoded = decodeIndexFile(bytes, "checkpoint");
    expectSameBytes(encodeIndexFile(decoded), bytes);
    // The log reader knows the running modseq at the checkpoint's position.
    real.state = withLogModseq(decoded, real.state.logModseq);
    real.checkpoints++;
    check(model, real);
  }
  toString = () => "checkpoint";
}

// Mostly small uids and spans; sometimes far ones, to reach bulk-appended messages across leaves.
const uidStart = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 40 }) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 5000 }) });
const span = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 8 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 2500 }) });
const flagMask = fc.integer({ min: 0, max: MAIL_FLAGS_NONRECENT });
const keywordName = fc.tuple(fc.constantFrom(...KEYWORD_POOL), fc.boolean()).map(([n, upper]) => (upper ? n.toUpperCase() : n));

const commands: Array<fc.Arbitrary<Cmd>> = [
  fc.array(flagMask, { minLength: 1, maxLength: 6 }).map((f) => new AppendCmd(f)),
  fc
    .tuple(uidStart, span, fc.constantFrom("add" as const, "remove" as const, "replace" as const), flagMask, fc.option(fc.tuple(fc.boolean(), keywordName), { nil: undefined }))
    .map(([u, l, mode, mask, kw]) => new FlagsCmd(u, l, mode, mask, kw)),
  fc.tuple(fc.boolean(), keywordName, uidStart, span).map(([a, n, u, l]) => new KeywordCmd(a, n, u, l)),
  fc.tuple(uidStart, span).map(([u, l]) => new KeywordResetCmd(u, l)),
  fc.tuple(uidStart, span, fc.boolean(), fc.boolean()).map(([u, l, e, g]) => new ExpungeCmd(u, Math.min(l, 600), e, g)),
  fc.constant(new CheckpointCmd()),
  fc.tuple(fc.integer({ min: 900, max: 2200 }), fc.boolean()).map(([n, seen]) => new BulkAppendCmd(n, seen)),
];

describe("index map fold vs. a plain model (fast-check)", () => {
  it("replay equals the model, and checkpoint + tail equals a full replay", () => {
    fc.assert(
      fc.property(fc.boolean(), fc.commands(commands, { maxCommands: 40 }), (withModseq, cmds) => {
        const builder = new LogBuilder();
        const model: Model = { messages: new Map(), nextUid: 1, keywordNames: [], modseqEnabled: withModseq, highest: builder.modseq };
        const real: Real = { builder, state: emptyIndexMap({ indexId: 42 }), txs: [], checkpoints: 0 };
        commit(real, [R.headerU32(HDR.uidValidity, 1234)]);
        if (withModseq) commit(real, enableModseq(builder.modseq));
        fc.modelRun(() => ({ model, real }), cmds);
        check(model, real, true);
        // Whatever checkpoints happened on the way, the bytes equal a replay from scratch.
        const full = replay(real.txs, emptyIndexMap({ indexId: 42 }));
        expectSameBytes(encodeIndexFile(real.state), encodeIndexFile(full));
        expect(highestModseq(full)).toBe(highestModseq(real.state));
      }),
      { seed: SEED, numRuns: RUNS, path: PATH, verbose: 1 },
    );
  });

  it("a checkpoint at a random transaction plus the remaining log equals the full replay", () => {
    fc.assert(
      fc.property(fc.commands([...commands.slice(0, 5), commands[6]], { maxCommands: 30 }), fc.nat(), (cmds, cut) => {
        const builder = new LogBuilder();
        const model: Model = { messages: new Map(), nextUid: 1, keywordNames: [], modseqEnabled: true, highest: builder.modseq };
        const real: Real = { builder, state: emptyIndexMap({ indexId: 42 }), txs: [], checkpoints: 0 };
        commit(real, [R.headerU32(HDR.uidValidity, 1234), ...enableModseq(builder.modseq)]);
        fc.modelRun(() => ({ model, real }), cmds);
        const k = cut % (real.txs.length + 1);
        const head = replay(real.txs.slice(0, k), emptyIndexMap({ indexId: 42 }));
        const resumed = replay(real.txs.slice(k), decodeIndexFile(encodeIndexFile(head), "cp"));
        expectSameBytes(encodeIndexFile(resumed), encodeIndexFile(real.state));
      }),
      { seed: SEED + 1, numRuns: RUNS, path: PATH, verbose: 1 },
    );
  });
});
