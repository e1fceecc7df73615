import * as path from "node:path";
import fc from "fast-check";
import { afterAll, expect, it } from "vitest";
import { flagNames } from "../../src/shared/flags.js";
import { loadState } from "../../src/index-io/load-state.js";
import { getHeader, highestModseq, messageCount, recordAt } from "../../src/projections/read.js";
import { createOracle, describeInterop, MAIL_FORMATS, sampleMessage, type DovecotOracle, type MailFormat } from "../helpers/dovecot.js";

type Op =
  | { kind: "save"; n: number }
  | { kind: "flags"; action: "add" | "remove" | "replace"; names: string[]; pick: number }
  | { kind: "expunge"; pick: number }
  | { kind: "copy" | "move"; pick: number };

const FLAG_POOL = ["\\Seen", "\\Flagged", "\\Answered", "\\Deleted", "\\Draft", "$Label1", "work", "todo"];
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("save" as const), n: fc.nat(1000) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("flags" as const), action: fc.constantFrom("add" as const, "remove" as const, "replace" as const), names: fc.subarray(FLAG_POOL, { minLength: 1, maxLength: 3 }), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("expunge" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom("copy" as const, "move" as const), pick: fc.nat() }) },
);

/** Runs random doveadm operations, then compares the engine's replay of INBOX with what doveadm reports. */
async function checkFormat(format: MailFormat, ops: Op[]): Promise<void> {
  const o: DovecotOracle = createOracle(format);
  try {
    const other = format === "maildir" ? "Other" : "Other";
    await o.mailboxCreate(other);
    let uids: number[] = [];
    for (const op of ops) {
      const uid = uids.length ? uids[(op as { pick?: number }).pick! % uids.length] : 0;
      switch (op.kind) {
        case "save":
          await o.save("INBOX", sampleMessage(op.n));
          break;
        case "flags":
          if (uid) await o.flags(op.action, op.names.join(" "), ["mailbox", "INBOX", "uid", String(uid)]);
          break;
        case "expunge":
          if (uid) await o.expunge(["mailbox", "INBOX", "uid", String(uid)]);
          break;
        case "copy":
        case "move":
          if (uid) await o[op.kind](other, ["mailbox", "INBOX", "uid", String(uid)]);
          break;
      }
      if (op.kind !== "flags" && op.kind !== "copy") uids = (await o.fetch("uid", ["mailbox", "INBOX", "all"])).map((r) => Number(r.uid));
    }
    const theirs = await o.fetch("uid flags modseq", ["mailbox", "INBOX", "all"]);
    const status = await o.mailboxStatus("messages uidnext uidvalidity highestmodseq", "INBOX");
    // `fetch modseq` enables modseqs and `mailbox status` may sync: read after both.
    const state = loadState(path.join(o.mailboxIndexDir("INBOX"), "dovecot.index"));
    const ours = [];
    for (let seq = 1; seq <= messageCount(state); seq++) {
      const r = recordAt(state, seq)!;
      ours.push({ uid: String(r.uid), flags: [...flagNames(r.flags), ...r.keywords].sort(), modseq: String(r.modseq) });
    }
    expect(ours).toEqual(theirs.map((r) => ({ uid: r.uid, flags: r.flags.split(" ").filter((f) => f && f !== "\\Recent").sort(), modseq: r.modseq })));
    const h = getHeader(state);
    expect({ messages: String(messageCount(state)), uidnext: String(h.nextUid), uidvalidity: String(h.uidValidity), highestmodseq: String(highestModseq(state)) })
      .toEqual({ messages: status.messages, uidnext: status.uidnext, uidvalidity: status.uidvalidity, highestmodseq: status.highestmodseq });
  } finally {
    await o.cleanup();
  }
}

describeInterop("projection of random Dovecot operations", () => {
  const oracles: DovecotOracle[] = [];
  afterAll(async () => { for (const o of oracles) await o.cleanup(); });
  it.each(MAIL_FORMATS)("%s: uids, flags, keywords, modseqs, uidnext, uidvalidity, highestmodseq equal doveadm's", async (format) => {
    await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 40 }), (ops) => checkFormat(format, ops)), {
      numRuns: 6, seed: Number(process.env.PROP_SEED ?? 20261123),
    });
  }, 240_000);
});
