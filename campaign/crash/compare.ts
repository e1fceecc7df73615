/**
 * What a store may look like after a kill, given the journal: every key
 * (mailbox, id) in the state the acknowledged steps lead to, except the keys
 * of the step in flight, which may also be in the state after it.
 */
import type { FoundMessage } from "./read.js";
import { applyStep, copyExpected, CRASH_MAILBOXES, type CrashMailbox, type Expected, type JournalFold, type Step } from "./steps.js";

/**
 * Kinds of problems: what the journal check finds (loss … disagree) and what
 * the round's other checks find (a worker or reader error, doveadm's
 * complaints, a lock that made the next command wait, a broken mdbox map).
 */
export type ProblemKind =
  | "loss" | "duplicate" | "damaged" | "flags" | "phantom" | "in-flight" | "disagree"
  | "worker-error" | "engine-error" | "doveadm-error" | "doveadm-tempfail" | "doveadm-problem" | "lock-wait" | "map"
  | "adopted";

/**
 * Counted, not failed:
 * - adopted: a message of a step a kill cut short (never acknowledged) that
 *   shows up in a later round. sdbox adopts a u.N a killed save left (flags
 *   lost) on its next commit; a rebuild (force-resync) brings back what an
 *   interrupted expunge or copy left (run.ts says why), as Dovecot's does;
 * - doveadm-tempfail: doveadm's first fetch after the kill exited 75 (a
 *   message gone while it fetched: a Maildir file renamed by the killed flag
 *   change, an mbox whose index lags behind a killed rewrite, which Dovecot
 *   resyncs), and the fetch tried again saw a store the journal allows
 *   (when it does not, that is a failure of its own kind).
 */
export const INFORMATIONAL: ReadonlySet<ProblemKind> = new Set(["adopted", "doveadm-tempfail"]);

export interface Problem {
  readonly kind: ProblemKind;
  /** The (mailbox, id) concerned, as "INBOX 100012". */
  readonly key?: string;
  readonly message: string;
}

export type Found = Record<CrashMailbox, FoundMessage[]>;

const same = (a: readonly string[] | undefined, b: readonly string[] | undefined): boolean =>
  a === undefined || b === undefined ? a === b : a.join(" ") === b.join(" ");
const show = (flags: readonly string[] | undefined): string => (flags === undefined ? "absent" : `(${flags.join(" ")})`);

/**
 * Compares what `who` found with what the journal allows. `limbo` holds the
 * keys of earlier rounds' interrupted steps (never acknowledged since): they
 * may show up late (INFORMATIONAL). `tainted` holds keys that once did: a
 * retried step then made a second copy, which is no new failure.
 */
export function compareWithJournal(who: string, found: Found, fold: JournalFold, limbo: ReadonlySet<string>, tainted: ReadonlySet<string>): Problem[] {
  const after: Expected = copyExpected(fold.expected);
  if (fold.inFlight) applyStep(after, fold.inFlight);
  const problems: Problem[] = [];
  for (const m of CRASH_MAILBOXES) {
    const byId = new Map<number, FoundMessage[]>();
    for (const f of found[m]) {
      if (f.id === undefined) {
        problems.push({ kind: "phantom", message: `${who}: ${m} uid ${f.uid} is no crash message` });
        continue;
      }
      byId.set(f.id, [...(byId.get(f.id) ?? []), f]);
    }
    const keys = new Set([...fold.expected[m].keys(), ...after[m].keys(), ...byId.keys()]);
    for (const id of keys) {
      const copies = byId.get(id) ?? [];
      const key = `${m} ${id}`;
      const where = `${who}: ${m} message ${id}`;
      const late = limbo.has(key) || tainted.has(key);
      // Counted once, from the engine's read (doveadm's must agree: compareViews).
      const adopted = (message: string) => who === "engine" && problems.push({ kind: "adopted", key, message: `${where} ${message}: left by an earlier step a kill cut short` });
      if (copies.length > 1) {
        const message = `is there ${copies.length} times (uids ${copies.map((c) => c.uid).join(",")})`;
        if (late) adopted(message);
        else problems.push({ kind: "duplicate", key, message: `${where} ${message}` });
      }
      for (const c of copies) if (!c.whole) problems.push({ kind: "damaged", key, message: `${where} uid ${c.uid}: bytes differ from what was saved` });
      const acked = fold.expected[m].get(id);
      const next = after[m].get(id);
      const holds = (flags: readonly string[] | undefined) => (copies.length === 0 ? flags === undefined : copies.some((c) => same(c.flags, flags)));
      if (holds(acked) || holds(next)) continue;
      const actual = copies[0]?.flags;
      if (acked === undefined && late) adopted(show(actual));
      else if (!same(acked, next)) problems.push({ kind: "in-flight", key, message: `${where}: ${show(actual)}, neither ${show(acked)} before the step in flight nor ${show(next)} after it` });
      else if (actual === undefined) problems.push({ kind: "loss", key, message: `${where} ${show(acked)} was acknowledged and is gone` });
      else if (acked === undefined) problems.push({ kind: "phantom", key, message: `${where} is there ${show(actual)} but was never saved or was expunged` });
      else problems.push({ kind: "flags", key, message: `${where} has flags ${show(actual)}, acknowledged ${show(acked)}` });
    }
  }
  if (fold.inFlight?.kind === "move") problems.push(...moveProblems(who, found, fold.inFlight, limbo, tainted));
  return problems;
}

/**
 * A move the kill cut short leaves its message in exactly one of the two
 * mailboxes: each key alone may be before or after the step, but not the
 * source's "before" with the target's "after" (in both) or the reverse (lost).
 */
function moveProblems(who: string, found: Found, move: Extract<Step, { kind: "move" }>, limbo: ReadonlySet<string>, tainted: ReadonlySet<string>): Problem[] {
  const keys = [`${move.from} ${move.id}`, `${move.to} ${move.id}`];
  if (keys.some((k) => limbo.has(k) || tainted.has(k))) return [];
  const inFrom = found[move.from].some((f) => f.id === move.id);
  const inTo = found[move.to].some((f) => f.id === move.id);
  if (inFrom === inTo) {
    const message = `${who}: message ${move.id}, moved from ${move.from} to ${move.to} when the kill came, is ${inFrom ? "in both" : "in neither"}`;
    return [{ kind: inFrom ? "duplicate" : "loss", key: keys[1], message }];
  }
  return [];
}

/** The engine and doveadm see the same (mailbox, id) → flags. */
export function compareViews(engine: Found, doveadm: Found): Problem[] {
  const key = (f: Found) =>
    CRASH_MAILBOXES.flatMap((m) => f[m].map((x) => `${m} ${x.id ?? `uid${x.uid}`} ${x.flags.join(" ")}`)).sort().join("\n");
  const a = key(engine);
  const b = key(doveadm);
  if (a === b) return [];
  const as = new Set(a.split("\n"));
  const bs = new Set(b.split("\n"));
  const onlyEngine = [...as].filter((x) => !bs.has(x)).slice(0, 5);
  const onlyDoveadm = [...bs].filter((x) => !as.has(x)).slice(0, 5);
  return [{ kind: "disagree", message: `engine only: [${onlyEngine.join("; ")}] doveadm only: [${onlyDoveadm.join("; ")}]` }];
}

/**
 * The state found, as the next round's baseline. Of an id found twice (a
 * surfaced leftover beside its retry) the last copy counts, the one the
 * worker works on (it learns the store the same way).
 */
export function expectedFrom(found: Found): Expected {
  const e: Expected = { INBOX: new Map(), Other: new Map() };
  for (const m of CRASH_MAILBOXES) for (const f of found[m]) if (f.id !== undefined && f.whole) e[m].set(f.id, f.flags);
  return e;
}
