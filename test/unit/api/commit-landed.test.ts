/**
 * What an sdbox expunge unlinks once its commit is in the log, when
 * something else fails around it: another commit's replication precheck
 * (CommitHooks.beforeCommitLocks) failing while the expunge is in flight,
 * or a later step of Mailbox.commitSteps throwing after the expunge's step
 * was logged. Either way the log says expunged, so the file must go (a
 * rebuild would bring it back otherwise). And the commit hooks see what
 * such a commitSteps left in the log.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { messageCount, openStorage, type CommitHooks, type CommittedRange } from "../../../src/index.js";
import { isLandedInLog } from "../../../src/api/landed-errors.js";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "commit-landed-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A one-shot ready signal: `fire` resolves `fired`. */
function signal(): { fired: Promise<void>; fire: () => void } {
  let fire!: () => void;
  const fired = new Promise<void>((r) => (fire = r));
  return { fired, fire };
}

const fileOf = (uid: number) => path.join(dir, "mail/mailboxes/INBOX/dbox-Mails", `u.${uid}`);

it("a failing precheck of one commit keeps another commit's expunged files to delete", async () => {
  let holdAfterCommit = false;
  let failPrecheck = false;
  const { fired: inAfterCommit, fire: reached } = signal();
  const { fired: released, fire: release } = signal();
  const commitHooks: CommitHooks = {
    beforeCommitLocks: async () => {
      if (failPrecheck) throw new Error("precheck failed (timeout)");
      return undefined;
    },
    afterCommit: async () => {
      if (!holdAfterCommit) return;
      reached();
      await released;
    },
  };
  const storage = openStorage(`sdbox:${dir}/mail`, { commitHooks });
  try {
    const box = await storage.openMailbox("INBOX");
    await box.transaction().append({ body: "Subject: one\n\n1\n" }).append({ body: "Subject: two\n\n2\n" }).commit();
    holdAfterCommit = true;
    const expunge = box.transaction().expunge([{ uid1: 1, uid2: 1 }]).commit();
    await inAfterCommit; // the expunge is logged, its file not yet unlinked
    failPrecheck = true;
    await expect(box.transaction().flags([{ uid1: 2, uid2: 2 }], "add", ["\\Seen"]).commit()).rejects.toThrow(/precheck failed/);
    release();
    await expunge;
    expect(fs.existsSync(fileOf(1)), "u.1 of the committed expunge").toBe(false);
    expect(fs.existsSync(fileOf(2))).toBe(true);
  } finally {
    await storage.close();
  }
});

it("commitSteps: a step that throws after an earlier step logged an expunge still unlinks its file", async () => {
  const storage = openStorage(`sdbox:${dir}/mail`);
  try {
    const box = await storage.openMailbox("INBOX");
    await box.transaction().append({ body: "Subject: one\n\n1\n" }).append({ body: "Subject: two\n\n2\n" }).commit();
    await expect(box.commitSteps([
      async (state) => [await box.backend.expungeMessages(state, [1])],
      async () => { throw new Error("step 2: body missing"); },
    ], { changesMessages: true })).rejects.toThrow(/step 2/);
    expect(messageCount(await box.refresh()), "step 1's expunge is in the log").toBe(1);
    expect(fs.existsSync(fileOf(1)), "u.1 of the logged expunge").toBe(false);
  } finally {
    await storage.close();
  }
});

it("an expunge's files are unlinked under its own lock: the next commit's expunge, built but not logged yet, keeps its file", async () => {
  let holdAfterCommit = true;
  const { fired: inAfterCommit, fire: reachedA } = signal();
  const { fired: releasedA, fire: releaseA } = signal();
  const commitHooks: CommitHooks = {
    afterCommit: async () => {
      if (!holdAfterCommit) return;
      holdAfterCommit = false;
      reachedA();
      await releasedA;
    },
  };
  const storage = openStorage(`sdbox:${dir}/mail`, { commitHooks });
  try {
    const box = await storage.openMailbox("INBOX");
    holdAfterCommit = false;
    await box.transaction().append({ body: "Subject: one\n\n1\n" }).append({ body: "Subject: two\n\n2\n" }).commit();
    holdAfterCommit = true;
    const a = box.transaction().expunge([{ uid1: 1, uid2: 1 }]).commit();
    await inAfterCommit; // A is logged and holds the lock; B waits for it
    const { fired: bBuilt, fire: reachedB } = signal();
    const { fired: releasedB, fire: releaseB } = signal();
    const b = box.commitSteps([
      async (state) => {
        await box.backend.expungeMessages(state, [2]);
        reachedB();
        await releasedB;
        throw new Error("B fails before its expunge is logged");
      },
    ], { changesMessages: true });
    releaseA();
    await a;
    await bBuilt;
    expect(fs.existsSync(fileOf(1)), "u.1 of A's logged expunge").toBe(false);
    expect(fs.existsSync(fileOf(2)), "u.2 of B's expunge, not logged").toBe(true);
    releaseB();
    await expect(b).rejects.toThrow(/B fails/);
    expect(fs.existsSync(fileOf(2)), "u.2 after B failed").toBe(true);
    expect(messageCount(await box.refresh())).toBe(1);
  } finally {
    await storage.close();
  }
});

describe("commitSteps: afterCommit runs for the steps that landed before one threw", () => {
  /** Two messages, then a commitSteps that expunges uid 1, then uid 2, then throws; `hookFails`: the hook throws too. */
  async function landTwoThenThrow(hookFails: boolean) {
    const calls: CommittedRange[] = [];
    const commitHooks: CommitHooks = {
      afterCommit: async (_box, committed) => {
        calls.push(committed);
        if (hookFails && calls.length > 1) throw new Error("publish failed");
      },
    };
    const storage = openStorage(`sdbox:${dir}/mail`, { commitHooks });
    try {
      const box = await storage.openMailbox("INBOX");
      await box.transaction().append({ body: "Subject: one\n\n1\n" }).append({ body: "Subject: two\n\n2\n" }).commit();
      const before = box.position;
      const modseqBefore = box.state.logModseq;
      const err = await box.commitSteps([
        async (state) => [await box.backend.expungeMessages(state, [1])],
        async (state) => [await box.backend.expungeMessages(state, [2])],
        async () => { throw new Error("step 3: body missing"); },
      ], { changesMessages: true }).then(() => undefined, (e: unknown) => e as Error & { suppressed?: unknown[] });
      const state = await box.refresh();
      return { calls: calls.slice(1), err, before, modseqBefore, end: box.position, modseq: state.logModseq, count: messageCount(state) };
    } finally {
      await storage.close();
    }
  }

  it("one call with both landed transactions, then the step's error, marked landed", async () => {
    const r = await landTwoThenThrow(false);
    expect(r.err?.message).toMatch(/step 3/);
    expect(isLandedInLog(r.err)).toBe(true);
    expect(r.count, "both expunges are in the log").toBe(0);
    expect(r.calls, "afterCommit calls for the failed commitSteps").toHaveLength(1);
    const c = r.calls[0];
    expect(c.effects).toHaveLength(2);
    expect(c.start).toEqual(r.before);
    expect(c.end).toEqual(r.end);
    expect(c.modseqBefore).toBe(r.modseqBefore);
    expect(c.modseq).toBe(r.modseq);
  });

  it("a hook that fails too: the step's error is thrown, the hook's is on its `suppressed`", async () => {
    const r = await landTwoThenThrow(true);
    expect(r.err?.message).toMatch(/step 3/);
    expect(r.calls).toHaveLength(1);
    expect((r.err?.suppressed as Error[] | undefined)?.map((e) => e.message)).toEqual(["publish failed"]);
  });
});
