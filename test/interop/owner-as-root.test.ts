/**
 * A server embedding the library as root, in a store the mail user owns:
 * every file and directory the library makes (mailboxes, bodies, a rotated
 * dovecot.index.log, a rewritten dovecot.index, the mdbox map and purge's
 * new m.N, uidlists, dotlocks, rebuilds…) must be that user's, or Dovecot,
 * running as that user, cannot lock or rewrite it. doveadm (which drops to
 * uid 65534, the mail user here) then flags, expunges and saves in the
 * same store without a chown in between (the oracle's autoChown is off).
 */
import * as path from "node:path";
import { expect, it } from "vitest";
import { openStorage, TransactionLog } from "../../src/index.js";
import { createOracle, describeInterop, MAIL_FORMATS, ORACLE_GID, ORACLE_UID, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";
import { doveadmFetch, engineFetch } from "../helpers/fetch-compare.js";
import { describeTree } from "../helpers/tree.js";

/** Entries under the store's directories not owned by the mail user, as "path uid:gid". */
function notTheMailUsers(o: DovecotOracle): string[] {
  const roots = [o.root, ...(o.location.includes(":ALT=") ? [path.join(o.dir, "alt")] : [])];
  return roots.flatMap((root) =>
    [...describeTree(root, (_, st) => `${st.uid}:${st.gid}`)]
      .filter(([, owner]) => owner !== `${ORACLE_UID}:${ORACLE_GID}`)
      .map(([p, owner]) => `${path.join(root, p)} ${owner}`),
  );
}

/** Rotates the log at `prefix` (dovecot.index.log → .log.2, a new .log made by us). */
async function rotateLog(prefix: string): Promise<void> {
  const log = TransactionLog.open(prefix);
  try {
    await log.rotate();
  } finally {
    await log.close();
  }
}

describeInterop("embedded as root in a store the mail user owns, every new file is the mail user's; doveadm, as that user, carries on", () => {
  for (const format of MAIL_FORMATS) {
    it(`${format}: create, append, flag, expunge, log rotation, index rewrite${format === "mdbox" ? ", purge" : ""}, force-resync`, async () => {
      const dbox = format === "sdbox" || format === "mdbox";
      const o = createOracle(format, { alt: dbox });
      try {
        const work = "Work";
        // The API's hierarchy separator is "/" everywhere; doveadm's is Maildir++'s "." there.
        const child = "Sub/Child";
        const childThere = `Sub${o.separator}Child`;
        const storage = openStorage(o.location);
        await storage.createMailbox(work);
        await storage.createMailbox(child);
        await storage.subscribe(work);
        for (const name of ["INBOX", work, child]) {
          const box = await storage.openMailbox(name);
          await box.transaction()
            .append({ body: sampleMessage(1), flags: ["\\Seen", "$Label1"] })
            .append({ body: sampleMessage(2) })
            .append({ body: sampleMessage(3) })
            .commit();
          await box.transaction().flags([{ uid1: 1, uid2: 2 }], "add", ["\\Flagged", "kw"]).commit();
          await box.transaction().expunge([{ uid1: 2, uid2: 2 }]).commit();
          await box.close();
        }
        // A rotation of the mailbox's log (and the map's), more work in the new log, a dovecot.index rewrite.
        await rotateLog(o.mailboxLogPath("INBOX").slice(0, -".log".length));
        if (format === "mdbox") await rotateLog(path.join(o.mapIndexDir(), "dovecot.map.index"));
        const inbox = await storage.openMailbox("INBOX");
        await inbox.transaction().append({ body: sampleMessage(4) }).flags([{ uid1: 1, uid2: 1 }], "remove", ["\\Seen"]).commit();
        // dovecot.index is rewritten once 8 KB of log are not in it (Dovecot's mail_index_rewrite_min_log_bytes).
        // A keyword-update record carries the keyword's name: a long one fills the log in a few commits.
        const long = `k${"x".repeat(250)}`;
        for (let i = 0; i < 40; i++) await inbox.transaction().flags([{ uid1: 3, uid2: 3 }], i % 2 === 0 ? "add" : "remove", [long]).commit();
        await inbox.indexLogTail();
        await inbox.close();
        if (dbox) await storage.altMove(work, [1]);
        if (format === "mdbox") await storage.purge();
        await storage.forceResync(child);
        await storage.indexLogTail();
        const ours = await engineFetch(storage, "INBOX");
        await storage.close();

        expect(notTheMailUsers(o)).toEqual([]);
        // What the steps above made is there (and was checked): a rotated log, a rewritten index, purge's new m.N, altmove's copies.
        const made = [...describeTree(o.dir, () => "")].map(([p]) => p);
        expect(made).toContain(path.relative(o.dir, o.mailboxLogPath("INBOX") + ".2"));
        expect(made).toContain(path.relative(o.dir, path.join(o.mailboxIndexDir("INBOX"), "dovecot.index")));
        if (format === "mdbox") expect(made.filter((p) => /^mail\/storage\/m\.\d+$/.test(p) && !p.endsWith("m.1"))).not.toEqual([]);
        if (dbox) expect(made.filter((p) => p.startsWith("alt/") && /\/[mu]\.\d+$/.test(p))).not.toEqual([]);

        // doveadm, as the mail user, reads what we wrote and changes it: no "Index is read-only", no lock failure.
        expect(await doveadmFetch(o, "INBOX")).toEqual(ours);
        expect((await o.fetchText("INBOX", 4)).toString()).toBe(sampleMessage(4));
        await o.flags("add", "\\Answered", "mailbox INBOX all");
        await o.expunge("mailbox INBOX uid 1");
        await o.expunge(`mailbox ${work} uid 3`);
        await o.save(childThere, sampleMessage(5));
        if (format === "mdbox") await o.purge();
        expect((await o.fetchFlags("INBOX")).map((m) => [m.uid, m.flags.sort()])).toEqual([
          [3, ["\\Answered"]],
          [4, ["\\Answered"]],
        ]);
        expect((await o.fetchFlags(work)).map((m) => m.uid)).toEqual([1]);
        expect((await o.fetchFlags(childThere)).map((m) => m.uid)).toEqual([1, 3, 4]);
        o.assertNoStderrProblems();

        // And the library reads on after Dovecot.
        const again = openStorage(o.location);
        try {
          expect(await engineFetch(again, "INBOX")).toEqual(await doveadmFetch(o, "INBOX"));
          expect(await engineFetch(again, child)).toEqual(await doveadmFetch(o, childThere));
        } finally {
          await again.close();
        }
      } finally {
        await o.cleanup();
      }
    });
  }
});
