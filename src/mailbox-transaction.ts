import type { NewMessage, PreparedSave } from "./drivers/driver.js";
import { InvalidArgumentError } from "./errors.js";
import { flagNames, parseFlagNames } from "./flags.js";
import type { LogRecord, UidRange } from "./log/types.js";
import type { CommitResult, Mailbox } from "./mailbox.js";
import { lookupUid } from "./projections/read.js";
import type { IndexMapState } from "./projections/state.js";

/** How a flag change combines with the current flags. */
export type FlagAction = "add" | "remove" | "replace";

/** A message to append: bytes plus IMAP flags (`\Seen`, keywords …). */
export interface AppendInput {
  body: Uint8Array | string;
  flags?: readonly string[];
  /** INTERNALDATE. */
  receivedDate?: Date;
  guid?: string;
}

export interface TransactionCommitResult extends CommitResult {
  /** UIDs given to the appended messages, in append order. */
  appendedUids: number[];
}

type Op =
  | { kind: "flags"; uids: UidRange[]; action: FlagAction; flags: number; keywords: string[] }
  | { kind: "expunge"; uids: UidRange[] };

const internal = { external: false, sync: false } as const;
const external = { external: true, sync: false } as const;

/**
 * Changes to one mailbox, written as one log transaction by `commit()`. UIDs
 * are allocated and message files written only then, under the log lock.
 * Operations on UIDs that no longer exist at commit time are skipped, as
 * Dovecot skips them.
 */
export class MailboxTransaction {
  private readonly appends: NewMessage[] = [];
  private readonly ops: Op[] = [];
  private done = false;

  constructor(private readonly mailbox: Mailbox) {}

  append(input: AppendInput): this {
    const { flags, keywords } = parseFlagNames(input.flags ?? []);
    this.appends.push({
      body: typeof input.body === "string" ? Buffer.from(input.body) : input.body,
      flags,
      keywords,
      receivedTime: input.receivedDate ? Math.floor(input.receivedDate.getTime() / 1000) : undefined,
      guid: input.guid,
    });
    return this;
  }

  /** Changes system flags and keywords, e.g. `flags([{uid1: 1, uid2: 5}], "add", ["\\Seen", "$Label1"])`. */
  flags(uids: readonly UidRange[], action: FlagAction, names: readonly string[]): this {
    const { flags, keywords } = parseFlagNames(names);
    this.ops.push({ kind: "flags", uids: normalizeRanges(uids), action, flags, keywords });
    return this;
  }

  expunge(uids: readonly UidRange[]): this {
    this.ops.push({ kind: "expunge", uids: normalizeRanges(uids) });
    return this;
  }

  /** Copies messages into `target` (in `target`'s next commit-free transaction). */
  async copyTo(target: Mailbox, uids: readonly UidRange[]): Promise<TransactionCommitResult> {
    const state = await this.mailbox.refresh();
    const tx = target.transaction();
    for (const uid of existingUids(state, normalizeRanges(uids))) {
      const record = lookupUid(state, uid)!;
      const info = await this.mailbox.backend.messageInfo(state, uid);
      tx.append({
        body: await this.mailbox.backend.readMessage(state, uid),
        flags: [...flagNames(record.flags), ...record.keywords],
        receivedDate: new Date(info.receivedTime * 1000),
        guid: info.guid,
      });
    }
    return tx.commit();
  }

  /** Writes everything in one log transaction. Resolves to the log range written. */
  async commit(): Promise<TransactionCommitResult> {
    if (this.done) throw new InvalidArgumentError("transaction already committed");
    this.done = true;
    let prepared: PreparedSave | undefined;
    let appendedUids: number[] = [];
    let result: CommitResult | undefined;
    try {
      result = await this.mailbox.commitWith(async (state) => {
        const records: LogRecord[] = [];
        if (this.appends.length > 0) {
          const firstUid = state.header.nextUid;
          appendedUids = this.appends.map((_, i) => firstUid + i);
          prepared = await this.mailbox.backend.saveMessages(state, this.appends, firstUid);
          records.push({ type: "append", ...external, messages: this.appends.map((m, i) => ({ uid: firstUid + i, flags: m.flags })) });
          records.push(...prepared.records);
          const byKeyword = new Map<string, number[]>();
          this.appends.forEach((m, i) => m.keywords.forEach((k) => byKeyword.set(k, [...(byKeyword.get(k) ?? []), firstUid + i])));
          for (const [name, uids] of byKeyword) records.push({ type: "keyword-update", ...external, modifyType: "add", name, ranges: toRanges(uids) });
        }
        for (const op of this.ops) records.push(...(await this.opRecords(state, op)));
        return records.length > 0 ? [records] : [];
      });
    } catch (err) {
      await prepared?.rollback();
      throw err;
    }
    await prepared?.commit();
    const end = result ?? { start: this.mailbox.position, end: this.mailbox.position, modseq: this.mailbox.state.logModseq };
    return { ...end, appendedUids };
  }

  private async opRecords(state: IndexMapState, op: Op): Promise<LogRecord[]> {
    const uids = existingUids(state, op.uids);
    if (uids.length === 0) return [];
    const ranges = toRanges(uids);
    if (op.kind === "expunge") return this.mailbox.backend.expungeMessages(state, uids);
    const out: LogRecord[] = [];
    const add = op.action === "remove" ? 0 : op.flags;
    const remove = op.action === "add" ? 0 : op.action === "remove" ? op.flags : ~op.flags & 0x1f;
    if (add !== 0 || remove !== 0) {
      out.push({ type: "flag-update", ...internal, updates: ranges.map((r) => ({ ...r, addFlags: add, removeFlags: remove, modseqIncFlag: 0 })) });
    }
    if (op.action === "replace") out.push({ type: "keyword-reset", ...internal, ranges });
    for (const name of op.keywords) {
      out.push({ type: "keyword-update", ...internal, modifyType: op.action === "remove" ? "remove" : "add", name, ranges });
    }
    return out;
  }
}

/** UIDs of `ranges` that exist in `state`, ascending. */
export function existingUids(state: IndexMapState, ranges: readonly UidRange[]): number[] {
  const out: number[] = [];
  for (const r of ranges) {
    const span = state.records.rangeOfUids(r.uid1, r.uid2);
    if (!span) continue;
    for (let i = span[0]; i <= span[1]; i++) out.push(state.records.uidAt(i));
  }
  return out;
}

/** Sorted, merged, non-overlapping ranges, as log records require. */
export function normalizeRanges(ranges: readonly UidRange[]): UidRange[] {
  const sorted = ranges.filter((r) => r.uid1 >= 1 && r.uid1 <= r.uid2).map((r) => ({ ...r })).sort((a, b) => a.uid1 - b.uid1);
  const out: UidRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.uid1 <= last.uid2 + 1) last.uid2 = Math.max(last.uid2, r.uid2);
    else out.push(r);
  }
  return out;
}

export function toRanges(uids: readonly number[]): UidRange[] {
  return normalizeRanges(uids.map((uid) => ({ uid1: uid, uid2: uid })));
}
