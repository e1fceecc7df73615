/**
 * What the writers of the concurrency campaign do, and what the mailboxes
 * must hold afterwards. Each writer owns some flags (on the INITIAL messages,
 * which nobody expunges) and the messages it saved (which only it expunges,
 * copies or moves), so the final state follows from each writer's
 * acknowledged operations alone, whatever the interleaving.
 */

export type OpKind = "save" | "flags" | "expunge" | "copy" | "move";
export const OP_KINDS: readonly OpKind[] = ["save", "flags", "expunge", "copy", "move"];

export interface FlagOp { kind: "flags"; action: "add" | "remove"; names: string[]; uid1: number; uid2: number }
/** save: into the main mailbox; expunge: from it; copy, move: from it to the other mailbox. */
export interface MessageOp { kind: "save" | "expunge" | "copy" | "move"; subject: string }
export type Op = FlagOp | MessageOp;

/** What a worker process reports at the end (its last stdout line). */
export interface WorkerReport {
  name: string;
  done: Op[];
  retries: number;
  lockErrors: Record<string, number>;
  /** Wait of every log lock the worker took (diagnostics channel of src/log/lock.ts), ms. */
  lockWaitsMs: number[];
  error?: string;
}

/** A subject no other writer's search matches as a substring: "A.12." (doveadm searches substrings). */
export function ownSubject(writer: string, i: number): string {
  return `${writer}.${i}.`;
}

/** Flags `writer` owns: one system flag and three keywords. */
export function ownedFlags(writer: string, systemFlag: string): string[] {
  return [systemFlag, `$${writer}0`, `$${writer}1`, `$${writer}2`];
}

/**
 * Chooses the next operation (`pick(n)` gives an integer in [0, n)):
 * mostly flag changes, then saves, and expunge/copy/move of an own message
 * when `kinds` allows and one is there.
 */
export function chooseOp(pick: (n: number) => number, kinds: readonly OpKind[], writer: string, i: number, owned: readonly string[], maxUid: number, own: OwnMessages): Op {
  const r = pick(20);
  const inMain = [...own.main];
  const movable = inMain.filter((s) => !own.other.has(s));
  if (r < 2 && kinds.includes("save")) return { kind: "save", subject: ownSubject(writer, i) };
  if (r === 2 && kinds.includes("expunge") && inMain.length > 0) return { kind: "expunge", subject: inMain[pick(inMain.length)] };
  if (r === 3 && kinds.includes("copy") && movable.length > 0) return { kind: "copy", subject: movable[pick(movable.length)] };
  if (r === 4 && kinds.includes("move") && movable.length > 0) return { kind: "move", subject: movable[pick(movable.length)] };
  if (!kinds.includes("flags")) return { kind: "save", subject: ownSubject(writer, i) };
  const uid1 = 1 + pick(maxUid);
  const uid2 = pick(3) === 0 ? Math.min(maxUid, uid1 + pick(4)) : uid1;
  const names = owned.filter(() => pick(2) === 0);
  if (names.length === 0) names.push(owned[pick(owned.length)]);
  return { kind: "flags", action: pick(2) === 0 ? "add" : "remove", names, uid1, uid2 };
}

/** A writer's own messages: subjects in the main and in the other mailbox. */
export interface OwnMessages {
  main: Set<string>;
  other: Set<string>;
}

/** Applies an acknowledged operation to a writer's own messages. */
export function applyOwn(own: OwnMessages, op: Op): void {
  if (op.kind === "save") own.main.add(op.subject);
  else if (op.kind === "expunge") own.main.delete(op.subject);
  else if (op.kind === "copy") own.other.add(op.subject);
  else if (op.kind === "move") {
    own.main.delete(op.subject);
    own.other.add(op.subject);
  }
}

/** Subjects each mailbox must hold at the end (sorted), from every writer's acknowledged operations. */
export function expectedSubjects(writers: readonly Op[][]): { main: string[]; other: string[] } {
  const main: string[] = [];
  const other: string[] = [];
  for (const ops of writers) {
    const own: OwnMessages = { main: new Set(), other: new Set() };
    for (const op of ops) applyOwn(own, op);
    main.push(...own.main);
    other.push(...own.other);
  }
  return { main: main.sort(), other: other.sort() };
}

/** Final owned flags per uid 1..maxUid from each writer's acknowledged operations, in order. */
export function expectedFlags(writers: readonly Op[][], maxUid: number): Map<number, string[]> {
  const result = new Map<number, string[]>();
  const perWriter = writers.map((ops) => {
    const flags = new Map<number, Set<string>>();
    for (const op of ops) {
      if (op.kind !== "flags") continue;
      for (let uid = op.uid1; uid <= op.uid2; uid++) {
        const set = flags.get(uid) ?? new Set<string>();
        for (const n of op.names) op.action === "add" ? set.add(n) : set.delete(n);
        flags.set(uid, set);
      }
    }
    return flags;
  });
  for (let uid = 1; uid <= maxUid; uid++) result.set(uid, perWriter.flatMap((m) => [...(m.get(uid) ?? [])]).sort());
  return result;
}
