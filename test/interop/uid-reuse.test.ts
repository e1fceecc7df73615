/**
 * UID allocation against index loss, in all four formats, with doveadm as
 * the oracle: three saves, expunge of the highest UID (3), the index lost
 * (Dovecot treats indexes as a cache), force-resync, save. IMAP forbids
 * giving UID 3 to another message within one UIDVALIDITY.
 *
 * Each case runs on twin stores: the same files, then the engine resyncs
 * and saves on one twin and doveadm on the other; on both, the engine and
 * doveadm must read the same messages. Both orders of writers: the engine
 * saves and expunges (doveadm only reads afterwards), or the engine saves
 * and doveadm expunges.
 *
 * What Dovecot 2.3.19 does (observed; the cases check it still does):
 * - Maildir: dovecot-uidlist is recreated (written to .tmp, renamed) when
 *   an expunge leaves fewer than 75 % of its lines alive, and it then
 *   carries N = its in-memory next_uid: the old N raised past every line it
 *   read (maildir_uidlist_update_read) and past the index's next_uid
 *   (maildir_sync_index -> maildir_uidlist_set_next_uid, which also marks
 *   the file for recreation whenever the index's next_uid is higher, so any
 *   sync repairs a lowered N). Three saves and an expunge of UID 3 leave
 *   `N4` and lines 1 and 2; with fewer expunges the lines stay, and with
 *   them the UIDs. After losing the index the next save gets UID 4.
 * - mbox: X-IMAPbase's last UID is not lowered by an expunge (still
 *   0000000003; expunging the first message moves it, unchanged, to the new
 *   first one; expunging all leaves it in the pseudo message's X-IMAP).
 *   After losing the index the next save gets UID 4.
 * - sdbox and mdbox: next_uid lives only in the mailbox index (dbox-hdr
 *   holds rebuild_count, mailbox GUID and flags; the mdbox map knows map
 *   UIDs and refcounts, not mailbox UIDs). The rebuild (index_rebuild_header)
 *   takes UIDVALIDITY and next_uid from the old index, else from
 *   dovecot.index.backup, raised past the files found. A lost index is
 *   recreated with next_uid 1 (not 0), so the backup's next_uid is never
 *   used; when dovecot.index and its log are gone the backup is not read at
 *   all (its flags do not come back either), so the mailbox gets a NEW
 *   UIDVALIDITY and the new message UID 3: allowed. But when only the log
 *   is lost and a dovecot.index older than the saves of UIDs 3 stays,
 *   Dovecot keeps its UIDVALIDITY and gives UID 3 again: Dovecot itself
 *   reuses a UID there (`dovecot` REUSE below).
 * - mdbox with the map index lost too: the expunged message is still in
 *   m.N (not purged) and the rebuild puts it back as UID 3 (the same
 *   message, so no reuse); the new one gets UID 4, under a new UIDVALIDITY.
 *
 * The engine: never UID 3 under the old UIDVALIDITY, and never a lower UID
 * than Dovecot's. Where Dovecot neither reuses nor changes UIDVALIDITY
 * (Maildir, mbox) it does exactly what Dovecot does. For sdbox and mdbox it
 * takes a new UIDVALIDITY whenever the mailbox is rebuilt from anything
 * but its log (the backup or a dovecot.index may predate UIDs given since),
 * so it is better than Dovecot in the REUSE case.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, expect, it } from "vitest";
import { messageCount, openStorage, recordAt, type IndexMapState, type Mailbox } from "../../src/index.js";
import { createOracle, describeInterop, RESYNC_WARNINGS, sampleMessage, type DovecotOracle, type MailFormat } from "../helpers/dovecot.js";
import { doveadmFetch, engineFetch } from "../helpers/fetch-compare.js";

/** What doveadm gives the new message after the loss (observed with 2.3.19). */
interface DovecotOutcome {
  readonly uid: number;
  /** The mailbox kept its UIDVALIDITY (with uid 3 that is a reuse IMAP forbids). */
  readonly sameUidValidity: boolean;
}

/** One way of losing indexes. */
interface Loss {
  readonly name: string;
  readonly drop: (o: DovecotOracle) => void;
  readonly dovecot: DovecotOutcome;
  /** Have Dovecot write dovecot.index twice after this many saves: dovecot.index.backup then knows next_uid = backupAt + 1. */
  readonly backupAt?: number;
}

/** Deletes files under `dir` (recursively) whose name passes `pick`. */
function removeFiles(dir: string, pick: (name: string) => boolean): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) removeFiles(p, pick);
    else if (pick(e.name)) fs.rmSync(p);
  }
}

const listIndex = (n: string) => n.startsWith("dovecot.list.index");
const everyIndex = (n: string) => n.startsWith("dovecot.index") || listIndex(n);
/** `rm dovecot.index dovecot.index.log*`: dovecot.index.backup (and .cache) stay. */
const indexAndLogs = (n: string) => n === "dovecot.index" || n.startsWith("dovecot.index.log") || listIndex(n);
const logsOnly = (n: string) => n.startsWith("dovecot.index.log") || listIndex(n);

const NO_REUSE: DovecotOutcome = { uid: 4, sameUidValidity: true };
/** UID 3 again, but under a new UIDVALIDITY: allowed. */
const NEW_UIDVALIDITY: DovecotOutcome = { uid: 3, sameUidValidity: false };
/** UID 3 again under the same UIDVALIDITY: Dovecot's own reuse. */
const REUSE: DovecotOutcome = { uid: 3, sameUidValidity: true };

/** Losses shared by sdbox and mdbox (for mdbox: the mailbox's index; the map stays). */
const DBOX_LOSSES: readonly Loss[] = [
  { name: "dovecot.index* (the backup too)", drop: (o) => removeFiles(o.root, everyIndex), dovecot: NEW_UIDVALIDITY },
  { name: "dovecot.index and dovecot.index.log* (a backup with next_uid 4 kept)", drop: (o) => removeFiles(o.root, indexAndLogs), dovecot: NEW_UIDVALIDITY, backupAt: 3 },
  { name: "dovecot.index and dovecot.index.log* (a backup with next_uid 3 kept)", drop: (o) => removeFiles(o.root, indexAndLogs), dovecot: NEW_UIDVALIDITY, backupAt: 2 },
  { name: "dovecot.index.log* (dovecot.index and its backup with next_uid 3 kept)", drop: (o) => removeFiles(o.root, logsOnly), dovecot: REUSE, backupAt: 2 },
];

const LOSSES: Record<MailFormat, readonly Loss[]> = {
  maildir: [{ name: "every index file", drop: (o) => removeFiles(o.root, everyIndex), dovecot: NO_REUSE }],
  mbox: [{ name: "every index file", drop: (o) => removeFiles(o.root, everyIndex), dovecot: NO_REUSE }],
  sdbox: DBOX_LOSSES,
  mdbox: [
    ...DBOX_LOSSES,
    // The expunged message, not purged yet, comes back as UID 3; the new one gets 4.
    { name: "dovecot.index* and the map index", drop: (o) => removeFiles(o.root, (n) => everyIndex(n) || n.startsWith("dovecot.map.index")), dovecot: { uid: 4, sameUidValidity: false } },
  ],
};

type Expunger = "engine" | "doveadm";

function uidsOf(state: IndexMapState): number[] {
  const out: number[] = [];
  for (let seq = 1; seq <= messageCount(state); seq++) out.push(recordAt(state, seq)!.uid);
  return out;
}

describeInterop("UIDs are not given again after the highest is expunged and the index lost", () => {
  const oracles: DovecotOracle[] = [];
  afterEach(async () => {
    for (const o of oracles.splice(0)) await o.cleanup();
  });

  /**
   * Three messages saved by the engine, UID 3 expunged by `expunger`. With
   * `backupAt`, Dovecot writes dovecot.index twice after that many saves, so
   * that dovecot.index.backup exists and knows next_uid = backupAt + 1.
   */
  async function prepare(format: MailFormat, expunger: Expunger, backupAt?: number): Promise<{ o: DovecotOracle; uidValidity: number }> {
    const o = createOracle(format);
    oracles.push(o);
    const engine = async (work: (box: Mailbox) => Promise<void>) => {
      const storage = openStorage(o.location);
      try {
        await work(await storage.openMailbox("INBOX"));
      } finally {
        await storage.close();
      }
      o.chownRootSync();
    };
    let uidValidity = 0;
    const save = (from: number, to: number) => engine(async (box) => {
      uidValidity = box.uidValidity;
      for (let i = from; i <= to; i++) expect((await box.transaction().append({ body: sampleMessage(i) }).commit()).appendedUids).toEqual([i]);
    });
    await save(1, backupAt ?? 3);
    if (backupAt !== undefined) {
      const rewrite = { extraSettings: { mail_index_rewrite_min_log_bytes: "1", mail_index_rewrite_max_log_bytes: "1" } };
      await o.flags("add", "\\Seen", "mailbox INBOX uid 1", rewrite);
      await o.flags("remove", "\\Seen", "mailbox INBOX uid 1", rewrite);
      expect(fs.existsSync(path.join(o.mailboxIndexDir("INBOX"), "dovecot.index.backup"))).toBe(true);
      await save(backupAt + 1, 3);
    }
    if (expunger === "engine") {
      // No doveadm call until the index is gone: its sync would repair a lowered N (see the module comment).
      await engine(async (box) => {
        await box.transaction().expunge([{ uid1: 3, uid2: 3 }]).commit();
        expect(uidsOf(await box.refresh())).toEqual([1, 2]);
      });
    } else {
      await o.expunge("mailbox INBOX uid 3");
      expect((await o.fetch("uid", ["mailbox", "INBOX", "all"])).map((m) => Number(m.uid))).toEqual([1, 2]);
    }
    return { o, uidValidity };
  }

  /** A second oracle holding a copy of `o`'s mail files. */
  function twinOf(o: DovecotOracle): DovecotOracle {
    const t = createOracle(o.format);
    oracles.push(t);
    fs.rmSync(t.root, { recursive: true });
    fs.cpSync(o.root, t.root, { recursive: true });
    t.chownRootSync();
    return t;
  }

  /** Both readers see the same messages; @returns their UIDs. */
  async function agreedUids(o: DovecotOracle): Promise<number[]> {
    const storage = openStorage(o.location);
    let ours;
    try {
      ours = await engineFetch(storage, "INBOX");
    } finally {
      await storage.close();
    }
    o.chownRootSync();
    const theirs = await doveadmFetch(o, "INBOX");
    expect(ours).toEqual(theirs);
    return theirs.map((m) => m.uid);
  }

  /** The UIDVALIDITY doveadm reports. */
  async function uidValidityOf(o: DovecotOracle): Promise<number> {
    return Number((await o.mailboxStatus("uidvalidity", "INBOX")).uidvalidity);
  }

  for (const format of ["maildir", "mbox", "sdbox", "mdbox"] as const) {
    for (const loss of LOSSES[format]) {
      for (const expunger of ["engine", "doveadm"] as const) {
        it(`${format}, ${expunger} expunges UID 3, ${loss.name} lost: no UID is given twice within one UIDVALIDITY, doveadm reads what the engine wrote`, async () => {
          const { o: a, uidValidity } = await prepare(format, expunger, loss.backupAt);
          const b = twinOf(a);
          loss.drop(a);
          loss.drop(b);

          // The engine resyncs and saves on one twin...
          const storage = openStorage(a.location);
          let ours: number;
          try {
            await storage.forceResync("INBOX");
            const box = await storage.openMailbox("INBOX");
            [ours] = (await box.transaction().append({ body: sampleMessage(4) }).commit()).appendedUids;
          } finally {
            await storage.close();
          }
          const ourUids = await agreedUids(a);
          const ourSameV = (await uidValidityOf(a)) === uidValidity;
          // ...doveadm on the other.
          await b.forceResync("INBOX");
          await b.save("INBOX", sampleMessage(4));
          const theirUids = await agreedUids(b);
          const theirSameV = (await uidValidityOf(b)) === uidValidity;
          const facts = JSON.stringify({ ourUids, ourSameV, theirUids, theirSameV });

          expect(ourUids.at(-1), facts).toBe(ours);
          // The old messages are the same on both twins (none comes back from a backup older than its expunge).
          expect(ourUids.slice(0, -1), facts).toEqual(theirUids.slice(0, -1));
          expect({ uid: theirUids.at(-1), sameUidValidity: theirSameV }, facts).toEqual(loss.dovecot);
          // The engine: never an old UID under the old UIDVALIDITY, never a lower UID than Dovecot's.
          if (ourSameV) expect(ours, facts).toBeGreaterThan(3);
          expect(ours, facts).toBeGreaterThanOrEqual(loss.dovecot.uid);
          // Where Dovecot neither reuses nor changes UIDVALIDITY, the engine does exactly what it does.
          if (loss.dovecot === NO_REUSE) expect({ ourUids, ourSameV }).toEqual({ ourUids: theirUids, ourSameV: true });
          for (const o of [a, b]) o.assertNoStderrProblems(RESYNC_WARNINGS);
        });
      }
    }
  }

  it("Maildir: a dovecot-uidlist whose N was lowered below the index's next UID gets it back at the next sync, as Dovecot's does", async () => {
    const { o: a } = await prepare("maildir", "engine");
    const uidlist = (o: DovecotOracle) => fs.readFileSync(path.join(o.root, "dovecot-uidlist"), "utf8");
    // What the engine wrote before this fix: lines 1 and 2 under the first header's N1.
    fs.writeFileSync(path.join(a.root, "dovecot-uidlist"), uidlist(a).replace(/^(3 V\d+) N\d+ /, "$1 N1 "));
    const b = twinOf(a);
    const storage = openStorage(a.location);
    try {
      await storage.forceResync("INBOX");
    } finally {
      await storage.close();
    }
    await b.forceResync("INBOX");
    const header = (o: DovecotOracle) => uidlist(o).split("\n")[0].split(" ").slice(0, 3).join(" ");
    expect(header(a)).toMatch(/ N4$/);
    expect(header(a)).toBe(header(b));
    a.chownRootSync();
    for (const o of [a, b]) {
      removeFiles(o.root, everyIndex);
      await o.forceResync("INBOX");
      await o.save("INBOX", sampleMessage(4));
      expect(await agreedUids(o)).toEqual([1, 2, 4]);
      o.assertNoStderrProblems(RESYNC_WARNINGS);
    }
  });
});
