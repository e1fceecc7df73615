/**
 * The crash worker's journal: before each step it appends an intent line,
 * after the step's commit returned an ack line. The parent folds the
 * journal into what must survive a SIGKILL: every acknowledged step, and for
 * the one step the kill cut short, either the state before it or after it.
 */
import * as fs from "node:fs";

export type CrashMailbox = "INBOX" | "Other";
export const CRASH_MAILBOXES: readonly CrashMailbox[] = ["INBOX", "Other"];

/** The operations a round aims its kill at. */
export const CRASH_OPS = ["save", "flags", "expunge", "copy", "move", "purge", "altmove", "import", "force-resync"] as const;
export type CrashOp = (typeof CRASH_OPS)[number];

/** The operations format `format` has. */
export function crashOpsFor(format: string): CrashOp[] {
  return CRASH_OPS.filter((op) => (op === "purge" ? format === "mdbox" : op === "altmove" ? format === "sdbox" || format === "mdbox" : true));
}

/** One step of a worker. A `move` is one step: its message ends up in exactly one of the two mailboxes. */
export type Step =
  | { readonly kind: "save"; readonly mailbox: CrashMailbox; readonly ids: readonly number[]; readonly flags: ReadonlyArray<readonly string[]> }
  | { readonly kind: "flags"; readonly mailbox: CrashMailbox; readonly id: number; readonly flags: readonly string[] }
  | { readonly kind: "expunge"; readonly mailbox: CrashMailbox; readonly id: number }
  | { readonly kind: "copy"; readonly from: CrashMailbox; readonly to: CrashMailbox; readonly id: number }
  | { readonly kind: "move"; readonly from: CrashMailbox; readonly to: CrashMailbox; readonly id: number }
  | { readonly kind: "storage"; readonly what: "purge" | "altmove" | "force-resync" };

/** Expected contents: per mailbox, id → flags (sorted). */
export type Expected = Record<CrashMailbox, Map<number, string[]>>;

/** What the journal says: the state every acknowledged step leads to, and the step in flight at the kill. */
export interface JournalFold {
  readonly expected: Expected;
  readonly inFlight: Step | undefined;
  readonly acked: readonly Step[];
}

/** The (mailbox, id) keys a step may change, as "INBOX 100012". */
export function stepKeys(step: Step): string[] {
  switch (step.kind) {
    case "save": return step.ids.map((id) => `${step.mailbox} ${id}`);
    case "flags":
    case "expunge": return [`${step.mailbox} ${step.id}`];
    case "copy": return [`${step.to} ${step.id}`];
    case "move": return [`${step.from} ${step.id}`, `${step.to} ${step.id}`];
    case "storage": return [];
  }
}

export function emptyExpected(): Expected {
  return { INBOX: new Map(), Other: new Map() };
}

export function copyExpected(e: Expected): Expected {
  return { INBOX: new Map(e.INBOX), Other: new Map(e.Other) };
}

/** Applies an acknowledged step. */
export function applyStep(e: Expected, step: Step): void {
  switch (step.kind) {
    case "save":
      step.ids.forEach((id, i) => e[step.mailbox].set(id, [...step.flags[i]].sort()));
      return;
    case "flags":
      if (e[step.mailbox].has(step.id)) e[step.mailbox].set(step.id, [...step.flags].sort());
      return;
    case "expunge":
      e[step.mailbox].delete(step.id);
      return;
    case "copy":
    case "move": {
      const flags = e[step.from].get(step.id);
      if (flags) e[step.to].set(step.id, flags);
      if (step.kind === "move") e[step.from].delete(step.id);
      return;
    }
    case "storage":
      return;
  }
}

/** Reads a journal written by the worker (one JSON line per intent or ack) on top of `before`. */
export function foldJournal(file: string, before: Expected): JournalFold {
  const expected = copyExpected(before);
  let pending: Step | undefined;
  const acked: Step[] = [];
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (line === "") continue;
    const entry = JSON.parse(line) as { intent: Step } | { ack: true };
    if ("intent" in entry) pending = entry.intent;
    else if (pending) {
      applyStep(expected, pending);
      acked.push(pending);
      pending = undefined;
    }
  }
  return { expected, inFlight: pending, acked };
}

/** Appends journal lines (one write each: a SIGKILL cannot tear a line). */
export class JournalWriter {
  private readonly fd: number;
  constructor(file: string) {
    this.fd = fs.openSync(file, "a");
  }
  intent(step: Step): void {
    fs.writeSync(this.fd, JSON.stringify({ intent: step }) + "\n");
  }
  ack(): void {
    fs.writeSync(this.fd, '{"ack":true}\n');
  }
}
