/**
 * `mailstore import` keeps the numbering, as dsync does: Dovecot writes an
 * mbox with gaps (expunged messages, the last ones too, and a mailbox whose
 * every message was expunged); it is imported into Maildir, that into mdbox,
 * that into sdbox. After every hop doveadm reports each mailbox with the
 * source's UIDVALIDITY and UIDNEXT (`mailbox status uidvalidity uidnext
 * messages`), and the same UIDs, GUIDs and flags (`fetch 'uid guid flags'`).
 * The log records that set an existing INBOX's UIDVALIDITY and UIDNEXT are
 * the header updates doveadm's own `mailbox update` writes (`doveadm dump`).
 * A second import into each target adds nothing (every message is skipped)
 * and changes nothing doveadm can see.
 */
import { afterEach, beforeEach, expect, it } from "vitest";
import { importMailboxes } from "../../src/convert/import.js";
import { openStorage, type Storage } from "../../src/index.js";
import { createOracle, describeInterop, parseFlags, sampleMessage, type DovecotOracle, type MailFormat } from "../helpers/dovecot.js";

const MAILBOXES = ["INBOX", "Sub/Child", "Emptied"];
const CHAIN: readonly MailFormat[] = ["maildir", "mdbox", "sdbox"];

interface Seen {
  status: Record<string, string>;
  messages: Array<{ uid: number; guid: string; flags: string[] }>;
}

/** What doveadm reports of every mailbox (Maildir names use "." where the others use "/"). */
async function seenByDoveadm(o: DovecotOracle): Promise<Record<string, Seen>> {
  const out: Record<string, Seen> = {};
  for (const name of MAILBOXES) {
    const theirs = name.replace("/", o.separator);
    const { mailbox: _, ...status } = await o.mailboxStatus("uidvalidity uidnext messages", theirs);
    const rows = await o.fetch("uid guid flags", ["mailbox", theirs, "all"]);
    out[name] = { status, messages: rows.map((r) => ({ uid: Number(r.uid), guid: r.guid, flags: parseFlags(r.flags).sort() })) };
  }
  return out;
}

describeInterop("import keeps UIDVALIDITY, UIDs (with gaps) and UIDNEXT: mbox → Maildir → mdbox → sdbox", () => {
  const oracles: DovecotOracle[] = [];
  beforeEach(() => {
    oracles.length = 0;
  });
  afterEach(async () => {
    for (const o of oracles) await o.cleanup();
  });

  it("every hop matches the Dovecot-written mbox as doveadm sees it; a second run adds nothing", async () => {
    const first = createOracle("mbox");
    oracles.push(first);
    await first.mailboxCreate("Sub/Child");
    await first.mailboxCreate("Emptied");
    for (let i = 1; i <= 7; i++) await first.save("INBOX", sampleMessage(i));
    for (let i = 1; i <= 4; i++) await first.save("Sub/Child", sampleMessage(20 + i));
    for (let i = 1; i <= 2; i++) await first.save("Emptied", sampleMessage(40 + i));
    await first.flags("add", "\\Seen $Label1", "mailbox INBOX uid 3:4");
    await first.flags("add", "\\Flagged", "mailbox Sub/Child uid 4");
    await first.expunge("mailbox INBOX uid 2");
    await first.expunge("mailbox INBOX uid 5");
    await first.expunge("mailbox INBOX uid 7"); // the last: UIDNEXT stays 8
    await first.expunge("mailbox Sub/Child uid 1");
    await first.expunge("mailbox Emptied all");
    const original = await seenByDoveadm(first);
    expect(original.INBOX.messages.map((m) => m.uid)).toEqual([1, 3, 4, 6]);
    expect(original.INBOX.status).toMatchObject({ uidnext: "8", messages: "4" });
    expect(original["Sub/Child"].messages.map((m) => m.uid)).toEqual([2, 3, 4]);
    expect(original.Emptied.status).toMatchObject({ uidnext: "3", messages: "0" });

    let source: Storage = openStorage(first.location);
    try {
      for (const format of CHAIN) {
        const hop = createOracle(format);
        oracles.push(hop);
        // An INBOX Dovecot made, empty, with a UIDVALIDITY of its own: the import replaces it.
        await hop.run(["mailbox", "update", "--uid-validity", "4242", "INBOX"]);
        const target = openStorage(hop.location);
        const imported = await importMailboxes(source, target, { mailboxes: MAILBOXES });
        for (const m of imported) {
          expect(m, `${format} ${m.name}`).toMatchObject({ skipped: 0, uidsKept: true, uidValidityKept: true, messages: original[m.name].messages.length });
        }
        await source.close();
        source = target;
        await hop.chownRoot();
        expect(await seenByDoveadm(hop), `doveadm on the ${format} copy`).toEqual(original);
        // INBOX existed and was empty: its UIDVALIDITY and UIDNEXT came as header updates
        // that doveadm reads as it reads those of its own `mailbox update`.
        const log = await hop.dump(hop.mailboxLogPath("INBOX"), "log");
        expect(log).toContain(" - uid_validity = 4242\n"); // Dovecot's own (EXTERNAL when it made INBOX then)
        expect(log).toContain(`type=header-update, size=16\n - uid_validity = ${original.INBOX.status.uidvalidity}\n`);
        expect(log).toContain("type=header-update, size=16\n - next_uid = 8\n");

        // Again: nothing is copied twice, nothing doveadm sees changes.
        const mbox = openStorage(first.location);
        const again = await importMailboxes(mbox, target, { mailboxes: MAILBOXES }).finally(() => mbox.close());
        expect(again.map((m) => [m.name, m.messages, m.skipped, m.uidsKept, m.uidValidityKept])).toEqual(
          MAILBOXES.map((name) => [name, 0, original[name].messages.length, true, true]),
        );
        await hop.chownRoot();
        expect(await seenByDoveadm(hop), `doveadm on the ${format} copy after a second import`).toEqual(original);
        hop.assertNoStderrProblems();
      }
    } finally {
      await source.close();
    }
    first.assertNoStderrProblems();
  });
});
