/**
 * Two engine processes and doveadm changing the same mailbox at the same time,
 * in each format: random flag/keyword changes (single UIDs and ranges, add and
 * remove) and saves. Each writer owns its flags (engine A: \Flagged and $A0-2,
 * engine B: \Answered and $B0-2, doveadm: \Draft and $D0-2), so the final
 * state is known: for every (uid, flag), the last acknowledged change of its
 * owner. Afterwards both the engine and `doveadm fetch` must show exactly
 * that, every acknowledged save exactly once, doveadm must have logged no
 * problem, and dovecot.index.log must not have been recreated (its file_seq
 * may only grow by a chained rotation).
 *
 * The run is the concurrency campaign's (campaign/concurrency/run.ts, whose
 * workers run the public API from dist/ as the mail uid like doveadm),
 * limited to flag changes and saves, with more operations per writer than
 * its short version in campaigns.test.ts (which adds expunges, copies and
 * moves).
 *
 * Seed: CONCURRENCY_SEED=<n> replays one run's operations (every failure
 * message names it; the interleaving is up to the scheduler); CONCURRENCY_OPS
 * sets the operations per writer (default 100). With KEEP_ORACLE=1 the
 * mailbox stays, with every writer's acknowledged operations in
 * <oracle dir>/concurrency-ops.json.
 */
import { afterEach, expect, it } from "vitest";
import { concurrentRun } from "../../campaign/concurrency/run.js";
import { createOracle, describeInterop, MAIL_FORMATS, type DovecotOracle } from "../helpers/dovecot.js";

const OPS = Number(process.env.CONCURRENCY_OPS ?? 100);
/** 45 s at the default 100 operations per writer (Maildir takes ~15–25 s on 2 busy cores); longer runs get time in proportion. */
const TEST_TIMEOUT_MS = 45_000 * Math.max(1, OPS / 100);

describeInterop("two engine processes and doveadm changing one mailbox at once", () => {
  let o: DovecotOracle | undefined;
  afterEach(async () => {
    await o?.cleanup();
    o = undefined;
  });

  for (const format of MAIL_FORMATS) {
    it(`${format}: every acknowledged flag change and save survives, doveadm sees no corruption, the log is not recreated`, async () => {
      const seed = Number(process.env.CONCURRENCY_SEED ?? Math.floor(Math.random() * 2 ** 31));
      const tag = `[${format} seed=${seed}]`;
      o = createOracle(format);
      const run = await concurrentRun(o, seed, OPS, ["save", "flags"]).catch((err: Error) => {
        // Every failure names the seed that replays it.
        err.message = `${tag} ${err.message}`;
        throw err;
      });
      const [a, b] = run.reports;
      console.log(`${tag} engine A ${a.done.length} ops (${a.retries} retried), engine B ${b.done.length} ops (${b.retries} retried), doveadm ${run.doveadmOps.length} ops`);
      for (const r of run.reports) for (const [message, n] of Object.entries(r.lockErrors)) console.log(`${tag} engine ${r.name} retried ${n}× after: ${message}`);
      expect(run.problems, tag).toEqual([]);
    }, TEST_TIMEOUT_MS);
  }
});
