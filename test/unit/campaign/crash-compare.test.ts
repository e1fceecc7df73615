/**
 * The crash campaign's judge (campaign/crash/compare.ts): what a store may
 * hold after a kill, given the worker's journal.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compareWithJournal, type Found } from "../../../campaign/crash/compare.js";
import { crashBody } from "../../../campaign/crash/messages.js";
import { foundMessage } from "../../../campaign/crash/read.js";
import { emptyExpected, foldJournal, JournalWriter, type Step } from "../../../campaign/crash/steps.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "crash-journal-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let journals = 0;

function journal(steps: Array<[Step, boolean]>) {
  const file = path.join(dir, `journal-${journals++}`);
  const w = new JournalWriter(file);
  for (const [step, acked] of steps) {
    w.intent(step);
    if (acked) w.ack();
  }
  return foldJournal(file, emptyExpected());
}

const msg = (uid: number, id: number, flags: string[] = []) => foundMessage(uid, crashBody(id), flags);
const found = (inbox: ReturnType<typeof msg>[], other: ReturnType<typeof msg>[] = []): Found => ({ INBOX: inbox, Other: other });
const kinds = (problems: Array<{ kind: string }>) => problems.map((p) => p.kind);

describe("crash campaign: judging a store after a kill", () => {
  const save: Step = { kind: "save", mailbox: "INBOX", ids: [1, 2], flags: [["\\Seen"], []] };

  it("an acknowledged save must be there, whole, with its flags, once", () => {
    const fold = journal([[save, true]]);
    expect(compareWithJournal("engine", found([msg(1, 1, ["\\Seen"]), msg(2, 2)]), fold, new Set(), new Set())).toEqual([]);
    expect(kinds(compareWithJournal("engine", found([msg(1, 1, ["\\Seen"])]), fold, new Set(), new Set()))).toEqual(["loss"]);
    expect(kinds(compareWithJournal("engine", found([msg(1, 1), msg(2, 2)]), fold, new Set(), new Set()))).toEqual(["flags"]);
    expect(kinds(compareWithJournal("engine", found([msg(1, 1, ["\\Seen"]), msg(2, 2), msg(3, 2)]), fold, new Set(), new Set()))).toEqual(["duplicate"]);
    const torn = foundMessage(2, crashBody(2).slice(0, -3), []);
    expect(kinds(compareWithJournal("engine", found([msg(1, 1, ["\\Seen"]), torn]), fold, new Set(), new Set()))).toEqual(["damaged"]);
  });

  it("the step in flight may be done or not, nothing else", () => {
    const fold = journal([[save, true], [{ kind: "expunge", mailbox: "INBOX", id: 1 }, false]]);
    expect(fold.inFlight?.kind).toBe("expunge");
    expect(compareWithJournal("engine", found([msg(1, 1, ["\\Seen"]), msg(2, 2)]), fold, new Set(), new Set())).toEqual([]);
    expect(compareWithJournal("engine", found([msg(2, 2)]), fold, new Set(), new Set())).toEqual([]);
    expect(kinds(compareWithJournal("engine", found([msg(1, 1, ["\\Flagged"]), msg(2, 2)]), fold, new Set(), new Set()))).toEqual(["in-flight"]);
  });

  it("a move in flight leaves its message in exactly one of the two mailboxes", () => {
    const fold = journal([[save, true], [{ kind: "move", from: "INBOX", to: "Other", id: 1 }, false]]);
    expect(compareWithJournal("engine", found([msg(1, 1, ["\\Seen"]), msg(2, 2)]), fold, new Set(), new Set())).toEqual([]);
    expect(compareWithJournal("engine", found([msg(2, 2)], [msg(1, 1, ["\\Seen"])]), fold, new Set(), new Set())).toEqual([]);
    expect(kinds(compareWithJournal("engine", found([msg(1, 1, ["\\Seen"]), msg(2, 2)], [msg(1, 1, ["\\Seen"])]), fold, new Set(), new Set()))).toEqual(["duplicate"]);
    expect(kinds(compareWithJournal("engine", found([msg(2, 2)]), fold, new Set(), new Set()))).toEqual(["loss"]);
    // An acknowledged move: in the target only.
    const done = journal([[save, true], [{ kind: "move", from: "INBOX", to: "Other", id: 1 }, true]]);
    expect(compareWithJournal("engine", found([msg(2, 2)], [msg(1, 1, ["\\Seen"])]), done, new Set(), new Set())).toEqual([]);
    expect(kinds(compareWithJournal("engine", found([msg(1, 1, ["\\Seen"]), msg(2, 2)], [msg(1, 1, ["\\Seen"])]), done, new Set(), new Set()))).toEqual(["phantom"]);
  });

  it("a message nobody saved is a phantom, unless an earlier interrupted step left it (counted from the engine's read only)", () => {
    const fold = journal([[save, true]]);
    const store = found([msg(1, 1, ["\\Seen"]), msg(2, 2), msg(3, 7)]);
    expect(kinds(compareWithJournal("engine", store, fold, new Set(), new Set()))).toEqual(["phantom"]);
    expect(kinds(compareWithJournal("engine", store, fold, new Set(["INBOX 7"]), new Set()))).toEqual(["adopted"]);
    expect(compareWithJournal("doveadm", store, fold, new Set(["INBOX 7"]), new Set())).toEqual([]);
    // A retried copy beside the leftover of the interrupted one: any copy may carry the acknowledged flags.
    const copies = found([msg(1, 1, ["\\Seen"]), msg(2, 2), msg(4, 2, ["\\Seen"])]);
    expect(kinds(compareWithJournal("engine", copies, fold, new Set(), new Set(["INBOX 2"])))).toEqual(["adopted"]);
  });
});
