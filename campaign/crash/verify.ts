/**
 * After each kill: the engine and doveadm each read the whole store, in
 * alternating order, and what they find is checked against the journal.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { decodeRedoRecord, MBOX_REDO_JOURNAL } from "../../src/drivers/mbox/redo-journal.js";
import { MailstoreError, openStorage } from "../../src/index.js";
import { decodeMoveIntent, MOVE_INTENT_PREFIX } from "../../src/api/move-intent.js";
import { DoveadmError, parseFlags, stderrProblems, type DovecotOracle } from "../../test/helpers/dovecot-oracle.js";
import { inspectLeftoverDotlocks } from "./dotlocks.js";
import { mdboxMapProblems } from "./mdbox-map.js";
import { compareViews, compareWithJournal, type Found, type Problem } from "./compare.js";
import { foundMessage, readCrashMailbox } from "./read.js";
import { CRASH_MAILBOXES, type JournalFold } from "./steps.js";

/** A command slower than this after a kill waited for something the dead process left. */
export const LOCK_WAIT_LIMIT_MS = 10_000;

/**
 * Lines Dovecot prints when it finds an mbox whose index lags behind a
 * rewrite cut by a kill, before it resyncs: its own words after its own crash
 * (see test/interop/mbox-crash.test.ts).
 */
const ALLOWED_DOVEADM_WARNINGS: readonly RegExp[] = [/Next message unexpectedly corrupted in mbox file/, /Cached message offset \d+ is invalid for mbox/];

export interface VerifyResult {
  readonly problems: Problem[];
  /** What the engine found (the next round's baseline), when it could read the store. */
  readonly engineFound: Found | undefined;
  /** Dotlocks the kill left (each naming the dead worker; any other kind is a problem). */
  readonly dotlocksLeft: number;
  readonly doveadmFirst: boolean;
  /** Whether the kill left a move intent for the engine's next open to finish. */
  readonly moveToFinish: boolean;
}

/** Checks the store after a kill. `doveadmFirst` is honoured unless an mbox write is waiting in the redo journal. */
export async function verifyAfterKill(o: DovecotOracle, fold: JournalFold, limbo: ReadonlySet<string>, tainted: ReadonlySet<string>, doveadmFirst: boolean): Promise<VerifyResult> {
  const problems: Problem[] = [];
  const dotlocks = inspectLeftoverDotlocks(o.root);
  for (const message of dotlocks.problems) problems.push({ kind: "lock-wait", message });
  // A write the kill cut short is redone by the engine's next writer; Dovecot would renumber instead.
  // A move the kill cut short is finished by the engine's next open of its source; until then Dovecot sees both copies.
  const moveToFinish = pendingMoveIntent(o);
  const first = doveadmFirst && !(o.format === "mbox" && pendingMboxRedo(o)) && !moveToFinish;
  let engineFound: Found | undefined;
  let doveadmFound: Found | undefined;
  const engine = async () => {
    engineFound = await engineRead(o, problems);
    if (engineFound) problems.push(...compareWithJournal("engine", engineFound, fold, limbo, tainted));
  };
  const doveadm = async () => {
    doveadmFound = await doveadmRead(o, problems);
    if (doveadmFound) problems.push(...compareWithJournal("doveadm", doveadmFound, fold, limbo, tainted));
  };
  if (first) {
    await doveadm();
    await engine();
  } else {
    await engine();
    await doveadm();
  }
  if (engineFound && doveadmFound) problems.push(...compareViews(engineFound, doveadmFound));
  if (o.format === "mdbox") {
    for (const message of await mdboxMapProblems(o.root, /:ALT=([^:]+)/.exec(o.location)?.[1])) problems.push({ kind: "map", message });
  }
  return { problems, engineFound, dotlocksLeft: dotlocks.left, doveadmFirst: first, moveToFinish };
}

function pendingMoveIntent(o: DovecotOracle): boolean {
  return CRASH_MAILBOXES.some((m) => {
    const dir = o.mailboxIndexDir(m);
    return fs.existsSync(dir) && fs.readdirSync(dir).some((f) => f.startsWith(MOVE_INTENT_PREFIX) && decodeMoveIntent(fs.readFileSync(path.join(dir, f))) !== undefined);
  });
}

function pendingMboxRedo(o: DovecotOracle): boolean {
  return CRASH_MAILBOXES.some((m) => {
    const file = path.join(o.mailboxIndexDir(m), MBOX_REDO_JOURNAL);
    return fs.existsSync(file) && decodeRedoRecord(fs.readFileSync(file)) !== undefined;
  });
}

async function timed<T>(problems: Problem[], who: string, run: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const result = await run();
  const ms = performance.now() - t0;
  if (ms > LOCK_WAIT_LIMIT_MS) problems.push({ kind: "lock-wait", message: `${who} took ${Math.round(ms)} ms after the kill` });
  return result;
}

async function engineRead(o: DovecotOracle, problems: Problem[]): Promise<Found | undefined> {
  const storage = openStorage(o.location, { lockTimeoutMs: LOCK_WAIT_LIMIT_MS });
  try {
    return await timed(problems, "the engine", async () => {
      const found: Found = { INBOX: [], Other: [] };
      for (const m of CRASH_MAILBOXES) {
        const box = await storage.openMailbox(m);
        found[m] = await readCrashMailbox(box);
        await box.close();
      }
      return found;
    });
  } catch (err) {
    if (err instanceof MailstoreError && err.code === "LOCK_TIMEOUT") problems.push({ kind: "lock-wait", message: `engine: ${err.message}` });
    else problems.push({ kind: "engine-error", message: `engine read failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}` });
    return undefined;
  } finally {
    await storage.close();
  }
}

/**
 * doveadm's view. A fetch that exits 75 (EX_TEMPFAIL: Dovecot found a message
 * gone while it fetched, e.g. a Maildir file a killed flag change renamed) is
 * reported and tried once more, so that what it then sees is still checked.
 */
async function doveadmRead(o: DovecotOracle, problems: Problem[]): Promise<Found | undefined> {
  const fetchRows = async (m: string) => {
    try {
      return await o.fetch("uid flags text", ["mailbox", m, "all"]);
    } catch (err) {
      if (!(err instanceof DoveadmError) || err.code !== 75) throw err;
      problems.push({ kind: "doveadm-tempfail", message: `${err.message} (tried again)` });
      return o.fetch("uid flags text", ["mailbox", m, "all"]);
    }
  };
  try {
    return await timed(problems, "doveadm", async () => {
      const found: Found = { INBOX: [], Other: [] };
      for (const m of CRASH_MAILBOXES) {
        const rows = await fetchRows(m);
        found[m] = rows.map((r) => foundMessage(Number(r.uid), r.text ?? "", parseFlags(r.flags)));
        for (const line of stderrProblems(o.lastStderr, { allowWarnings: ALLOWED_DOVEADM_WARNINGS })) {
          problems.push({ kind: "doveadm-problem", message: `doveadm fetch ${m}: ${line}` });
        }
      }
      return found;
    });
  } catch (err) {
    if (!(err instanceof DoveadmError)) throw err;
    problems.push({ kind: "doveadm-error", message: err.message });
    return undefined;
  }
}
