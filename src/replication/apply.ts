/**
 * Applying a shipped commit to a replica store of any format. The primary's
 * records are translated, transaction by transaction, into one replica
 * transaction each, so that the replica's log counts modseqs as the
 * primary's does (a backlog's consecutive transactions go in one replica
 * commit, still one log transaction each: applyShippedRun):
 * - append: the replica's driver saves the shipped bodies under the same
 *   UIDs and GUIDs (its own format's records for them), with the same append
 *   record (UIDs, system flags);
 * - flag, keyword, keyword-reset, modseq and attribute updates: copied as they
 *   are (they do not depend on the format);
 * - an EXTERNAL expunge: the replica's driver expunges the same UIDs; an
 *   expunge request (not EXTERNAL) changes nothing and is left out, as its
 *   EXTERNAL expunge follows in the stream;
 * - header updates of the UIDVALIDITY or next UID (Mailbox.update's, or
 *   a driver's sync): repeated with the replica's Mailbox.update, so that its
 *   driver writes its own files too (Maildir's dovecot-uidlist, mbox's
 *   X-IMAPbase); they change no modseq, on either side;
 * - the modseq extension's first intro and its header (Dovecot's modseq
 *   enable, a CONDSTORE client's first use): copied, in a replica that does
 *   not keep modseqs yet, so that it keeps a modseq per message from the
 *   same point of its log as the primary (the messages there then take the
 *   same highest modseq, the log counting alike);
 * - other format records (other ext intros and record updates, other
 *   header updates, the mdbox map's references): left out; the replica's
 *   driver writes its own.
 * A transaction whose modseq the replica's log already reached was applied
 * before (a replica restarted between applying and saving its position):
 * it is skipped, so nothing is applied twice.
 */
import type { Mailbox } from "../api/mailbox.js";
import { NEXT_UID_OFFSET, UID_VALIDITY_OFFSET, type MailboxUpdate } from "../api/mailbox-update.js";
import type { Storage } from "../api/storage.js";
import type { NewMessage, PreparedSave } from "../drivers/driver.js";
import { decodeLogSegment } from "../log/segments.js";
import type { LogPosition, LogRecord, LogTransaction } from "../log/types.js";
import { isBefore } from "../index-io/load-state.js";
import { lookupUid, messageCount, position } from "../projections/read.js";
import { modseqFieldOffset } from "../projections/apply-modseq.js";
import type { IndexMapState } from "../projections/state.js";
import { ReplicationError } from "../shared/errors.js";
import type { BodyStore } from "./bodies.js";
import { introducesModseqs, isModseqIntro } from "../api/mailbox-modseqs.js";
import { keywordRegistrationRecords } from "./seed-records.js";
import { toRanges } from "../api/uid-ranges.js";
import { flagNames } from "../shared/flags.js";
import type { SeededMessage, ShippedBody, ShippedCommit } from "./wire.js";

export interface ApplyResult {
  /** Transactions of the shipped range written to the replica. */
  applied: number;
  /** Transactions left out: already applied, or nothing a replica repeats. */
  skipped: number;
}

/**
 * Opens (creating with the primary's UIDVALIDITY when missing) the replica's
 * mailbox for `c`.
 * @returns undefined when the commit is for a mailbox the replica has
 *   renamed since (a commit re-delivered to a replica restarted from an older
 *   position): the replica holds it under its later name, commits included.
 *   A mailbox is recognised by its UIDVALIDITY, which the replica takes from
 *   the primary and which is unique in the primary's store (dovecot-uidvalidity).
 */
export async function replicaMailbox(
  storage: Storage, open: Map<string, Mailbox>, c: ShippedCommit, known: Readonly<Record<string, string>> = {},
): Promise<Mailbox | undefined> {
  let box = open.get(c.mailboxGuid);
  if (box && box.name !== c.mailbox) {
    await box.close();
    open.delete(c.mailboxGuid);
    box = undefined;
  }
  if (!box) {
    const names = await storage.listMailboxes();
    if (!names.includes(c.mailbox) && c.mailbox !== "INBOX") {
      if ((await renamedTo(storage, names, c, known)) !== undefined) return undefined;
      await storage.createMailbox(c.mailbox, { uidValidity: c.uidValidity });
    }
    box = await storage.openMailbox(c.mailbox);
    if (box.uidValidity !== c.uidValidity) {
      // Another mailbox of that name (created after the shipped one was renamed away), while the shipped one lives on under its later name.
      const elsewhere = await renamedTo(storage, names.filter((n) => n !== c.mailbox), c, known);
      if (elsewhere !== undefined) {
        await box.close();
        return undefined;
      }
    }
    open.set(c.mailboxGuid, box);
    // Later commits catch up under the log lock themselves: a refresh per message would rescan Maildir's files each time.
    await box.refresh();
  }
  // INBOX is created on first use with a UIDVALIDITY of its own: take the primary's while it is empty.
  if (box.uidValidity !== c.uidValidity && messageCount(box.state) === 0) await box.update({ uidValidity: c.uidValidity });
  return box;
}

/** The UIDVALIDITY of the replica's mailbox `name` (which exists), without keeping it open; undefined when it has no index (none is created). */
async function uidValidityOf(storage: Storage, name: string): Promise<number | undefined> {
  if (!(await storage.hasIndex(name))) return undefined;
  const box = await storage.openMailbox(name);
  try {
    return box.uidValidity;
  } finally {
    await box.close();
  }
}

/**
 * The replica mailbox that is `c`'s under a later name: the primary's
 * UIDVALIDITY, which the replica's mailboxes take from it (INBOX aside: it
 * is created with one of its own, and is never a rename's target), and not
 * known (`known`: the position file's primary GUIDs by name) as another one.
 */
async function renamedTo(storage: Storage, names: readonly string[], c: ShippedCommit, known: Readonly<Record<string, string>>): Promise<string | undefined> {
  for (const name of names) {
    if (name === "INBOX" || (known[name] !== undefined && known[name] !== c.mailboxGuid)) continue;
    if ((await uidValidityOf(storage, name)) === c.uidValidity) return name;
  }
  return undefined;
}

/**
 * Applies a create message (ShippedCommit.op `create`): the replica gets the
 * mailbox with the primary's UIDVALIDITY, as a first commit would create it
 * (replicaMailbox), before any message is committed to it. Idempotent: a
 * replica that has it already (same name and UIDVALIDITY), or has it under a
 * later name (a re-delivery after a rename), changes nothing.
 * @returns the mailbox, open (undefined: renamed since), and whether anything was written.
 */
export async function applyCreate(
  storage: Storage, open: Map<string, Mailbox>, c: ShippedCommit, known: Readonly<Record<string, string>> = {},
): Promise<{ box: Mailbox | undefined; result: ApplyResult }> {
  const had = (await storage.listMailboxes()).includes(c.mailbox);
  const before = had ? await uidValidityOf(storage, c.mailbox) : undefined;
  const box = await replicaMailbox(storage, open, c, known);
  const changed = box !== undefined && (!had || before !== box.uidValidity);
  return { box, result: changed ? { applied: 1, skipped: 0 } : { applied: 0, skipped: 1 } };
}

/**
 * Applies a rename or delete message (ShippedCommit.op) to the replica's
 * store. Idempotent, as a replica restarted from an older position gets it
 * again: a rename whose target is already the shipped mailbox (same
 * UIDVALIDITY), or whose source is not there (never created here, or renamed
 * further since), changes nothing; nor does a delete of a mailbox that is
 * not there.
 * @throws ReplicationError when the target name of a rename is another mailbox.
 */
export async function applyTreeOp(storage: Storage, open: Map<string, Mailbox>, c: ShippedCommit, subject: string): Promise<ApplyResult> {
  const op = c.op;
  if (op === undefined || op.type === "create") throw new ReplicationError(`stream message for ${c.mailbox} is a ${op ? "create" : "commit"}, not a rename or delete`, { path: subject });
  const names = await storage.listMailboxes();
  const isShipped = async (name: string) => names.includes(name) && (await uidValidityOf(storage, name)) === c.uidValidity;
  // The open handle of the mailbox (and of any child a rename moves) would point at the old place.
  const from = op.type === "rename" ? op.from : c.mailbox;
  for (const [guid, box] of [...open]) {
    if (guid === c.mailboxGuid || box.name.startsWith(from + "/")) {
      await box.close();
      open.delete(guid);
    }
  }
  const skipped: ApplyResult = { applied: 0, skipped: 1 };
  if (op.type === "rename") {
    if (await isShipped(c.mailbox)) return skipped;
    if (names.includes(c.mailbox)) {
      throw new ReplicationError(`cannot rename ${op.from} to ${c.mailbox} as the primary did: the replica has another mailbox ${c.mailbox}`, { path: subject });
    }
    if (!(await isShipped(op.from))) return skipped;
    await storage.renameMailbox(op.from, c.mailbox);
    return { applied: 1, skipped: 0 };
  }
  if (!(await isShipped(c.mailbox))) return skipped;
  await storage.deleteMailbox(c.mailbox);
  return { applied: 1, skipped: 0 };
}

/** A primary transaction of a shipped commit, with what applying it needs. */
interface ShippedTransaction {
  tx: LogTransaction;
  /** Whether it moved the primary's modseq (Dovecot's mail_transaction_header_has_modseq). */
  changesModseq: boolean;
  byUid: ReadonlyMap<number, ShippedBody>;
  /** Index of its commit in shippedTransactions' `commits`. */
  commit: number;
}

/** Every transaction of `commits`, in order. */
function shippedTransactions(commits: readonly ShippedCommit[], subject: string): ShippedTransaction[] {
  const out: ShippedTransaction[] = [];
  for (const [commit, c] of commits.entries()) {
    const byUid = new Map(c.bodies.map((b) => [b.uid, b]));
    for (const seg of c.segments) {
      // The primary's running modseq before each transaction.
      let primaryBefore = seg.modseqAtFrom;
      for (const tx of decodeLogSegment(seg, subject)) {
        out.push({ tx, changesModseq: tx.modseq !== primaryBefore, byUid, commit });
        primaryBefore = tx.modseq;
      }
    }
  }
  return out;
}

/**
 * Applies every transaction of `commits` (consecutive messages of one
 * subject) that `box` has not applied yet. Each primary transaction stays
 * one replica transaction, with its own modseq; consecutive ones that move
 * the modseq go in one replica commit (Mailbox.commitSteps): one hold of
 * the locks and one sync of the mail files, not one each. A run ends after
 * a transaction that sets the UIDVALIDITY or next UID (repeated with
 * Mailbox.update, a commit of its own).
 * @param landed called with n as soon as the first n commits are all in
 *   the replica's log (applied or skipped), n growing; so a run that fails
 *   partway has said what of it landed.
 * @throws ReplicationError when a body a transaction needs is missing, or
 *   the replica's modseq does not follow the primary's (a diverged replica).
 */
export async function applyShippedRun(
  box: Mailbox, commits: readonly ShippedCommit[], bodies: BodyStore, subject: string, landed: (commits: number) => void = () => {},
): Promise<ApplyResult> {
  const result: ApplyResult = { applied: 0, skipped: 0 };
  const txs = shippedTransactions(commits, subject);
  const txsLanded = landedCommits(commits.length, txs, landed);
  for (let i = 0; i < txs.length;) {
    const { tx, changesModseq } = txs[i];
    const before = box.state.logModseq;
    // The primary's modseq enable changes no modseq itself: repeated where the replica's count is at it (not past: see README, Not done).
    const enables = !changesModseq && tx.modseq === before && introducesModseqs(tx) && modseqFieldOffset(box.state.extensions) < 0;
    if (!enables && (!changesModseq || tx.modseq <= before)) {
      // A transaction that changes no modseq may still be a Mailbox.update (repeating one is a no-op).
      if (await applyHeaderUpdate(box, tx)) result.applied++;
      else result.skipped++;
      txsLanded(++i);
      continue;
    }
    let end = i + 1;
    if (!enables) while (end < txs.length && txs[end].changesModseq && !setsHeaderValues(txs[end - 1].tx)) end++;
    // Only the run's last transaction may set header values: the ones before it are done once in the log (and reported then).
    await applyTransactions(box, txs.slice(i, end), bodies, subject, result, (n) => txsLanded(i + n));
    // After the transaction's appends, which move the next UID themselves: a header update raises it further.
    await applyHeaderUpdate(box, txs[end - 1].tx);
    i = end;
    txsLanded(i);
  }
  txsLanded(txs.length);
  return result;
}

/** Turns "the first k transactions landed" into applyShippedRun's `landed` (whole commits; one without transactions with those before it). */
function landedCommits(commits: number, txs: readonly ShippedTransaction[], landed: (commits: number) => void): (txs: number) => void {
  // ends[c]: how many transactions commits 0..c hold.
  const ends = new Array<number>(commits).fill(0);
  for (const { commit } of txs) ends[commit]++;
  for (let c = 1; c < commits; c++) ends[c] += ends[c - 1];
  let reported = 0;
  return (done) => {
    let n = reported;
    while (n < commits && ends[n] <= done) n++;
    if (n > reported) landed((reported = n));
  };
}

/**
 * Applies `run` in one replica commit, each transaction from the state the
 * ones before it left; one the replica's modseq reached already is skipped.
 * `landed(n)`: the run's first n transactions are in the log (checked or not), for n
 * below the run's length (the last one is the caller's: its header update follows).
 * @throws ReplicationError when the replica's modseq after a transaction is not the primary's.
 */
async function applyTransactions(
  box: Mailbox, run: readonly ShippedTransaction[], bodies: BodyStore, subject: string, result: ApplyResult, landed: (n: number) => void,
): Promise<void> {
  // The save of the step before, ended once its records are in the log: the next step's driver work sees it done (mbox: no longer this commit's own save).
  let prepared: PreparedSave | undefined;
  // Where the log was when the prepared save's step was built: past it once its records landed.
  let preparedAt: LogPosition | undefined;
  const endPrepared = async () => {
    const done = prepared;
    prepared = undefined;
    await done?.commit();
  };
  // The transaction last appended: the next step (or the end of the commit) checks the modseq it left.
  let last: LogTransaction | undefined;
  const checkLast = (state: IndexMapState) => {
    if (last !== undefined && state.logModseq !== last.modseq) {
      throw new ReplicationError(
        `replica modseq ${state.logModseq} after applying the primary's transaction at ${last.position.fileSeq}:${last.position.offset} (modseq ${last.modseq}): the replica diverged`,
        { path: box.indexPrefix, ...position(state) },
      );
    }
    last = undefined;
  };
  const steps = run.map(({ tx, byUid }, n) => async (state: IndexMapState) => {
    // The step before is in the log: its save ends, and it counts as landed, whatever the check then finds.
    await endPrepared();
    if (n > 0) landed(n);
    checkLast(state);
    // A transaction the replica has (a re-delivery) is skipped, as the modseq enable's first one is not (applyShippedRun).
    if (n > 0 && tx.modseq <= state.logModseq) {
      result.skipped++;
      return [];
    }
    const built = await translate(box, state, tx, byUid, bodies, subject);
    prepared = built.prepared;
    preparedAt = position(state);
    if (built.records.length === 0) {
      result.skipped++;
      return [];
    }
    result.applied++;
    last = tx;
    return [built.records];
  });
  const changesMessages = run.some(({ tx }) => tx.entries.some((e) => e.record.type === "append" || isExternalExpunge(e.record)));
  try {
    await box.commitSteps(steps, { changesMessages });
  } catch (err) {
    // The last step's save: kept when its records reached the log (the log refers to them), else undone.
    const done = prepared;
    prepared = undefined;
    if (done !== undefined) await (isBefore(preparedAt!, box.position) ? done.commit() : done.rollback());
    throw err;
  }
  await endPrepared();
  checkLast(box.state);
}

/** Whether `tx` sets the UIDVALIDITY or next UID (applyHeaderUpdate repeats it). */
function setsHeaderValues(tx: LogTransaction): boolean {
  return tx.entries.some(({ record }) => record.type === "header-update" && record.patches.some((p) => p.offset < NEXT_UID_OFFSET + 4 && p.offset + p.data.length > UID_VALIDITY_OFFSET));
}

/**
 * Repeats what `tx`'s header updates set of the UIDVALIDITY and next UID
 * with the replica's Mailbox.update.
 * Nothing to do when they set what the replica has, and a re-delivered one
 * changes nothing: the next UID never shrinks, and a UIDVALIDITY change is
 * left out once the replica has messages (the primary changes it only
 * while it has none, so the replica is past it).
 * @returns whether the replica wrote anything.
 */
async function applyHeaderUpdate(box: Mailbox, tx: LogTransaction): Promise<boolean> {
  const set = headerValuesOf(tx, box.state);
  if (set === undefined) return false;
  const update: MailboxUpdate = {};
  if (set.uidValidity !== box.state.header.uidValidity && set.uidValidity !== 0 && messageCount(box.state) === 0) update.uidValidity = set.uidValidity;
  if (set.nextUid > box.state.header.nextUid) update.minNextUid = set.nextUid;
  if (update.uidValidity === undefined && update.minNextUid === undefined) return false;
  return (await box.update(update)) !== undefined;
}

/** uid_validity and next_uid after `tx`'s header-update patches, over `state`'s; undefined when no patch touches them. */
function headerValuesOf(tx: LogTransaction, state: IndexMapState): { uidValidity: number; nextUid: number } | undefined {
  const fields = new Uint8Array(NEXT_UID_OFFSET + 4 - UID_VALIDITY_OFFSET);
  const view = new DataView(fields.buffer);
  view.setUint32(0, state.header.uidValidity, true);
  view.setUint32(NEXT_UID_OFFSET - UID_VALIDITY_OFFSET, state.header.nextUid, true);
  let touched = false;
  for (const { record } of tx.entries) {
    if (record.type !== "header-update") continue;
    for (const patch of record.patches) {
      for (let i = 0; i < patch.data.length; i++) {
        const at = patch.offset + i - UID_VALIDITY_OFFSET;
        if (at < 0 || at >= fields.length) continue;
        fields[at] = patch.data[i];
        touched = true;
      }
    }
  }
  return touched ? { uidValidity: view.getUint32(0, true), nextUid: view.getUint32(NEXT_UID_OFFSET - UID_VALIDITY_OFFSET, true) } : undefined;
}

/**
 * Applies a seed part (ShippedCommit.seed): a replica transaction that
 * appends the part's messages the replica does not have, under their UIDs,
 * with their flags, keywords, GUIDs, INTERNALDATEs and bodies (modseqs
 * enabled first when the primary keeps them per message); then one that
 * raises the part's seeded modseqs to the primary's (MODSEQ_UPDATE: Dovecot's
 * records only raise a modseq, so a message whose replica transaction
 * already counted past the primary's keeps the higher one). The modseqs
 * come after every message part because a MODSEQ_UPDATE raises the log's
 * counter too: were a part's appends to count after it, the replica's
 * counter could pass the primary's. The last part also raises the
 * log's modseq to the primary's at the seed's position (MODSEQ_UPDATE of
 * UID 0, Dovecot's highest-modseq update) and the next UID to the
 * primary's: the commits after the seed then count modseqs as the
 * primary's do, and one the replica has (a re-delivery) is skipped by the
 * same check as always.
 * Idempotent: a part whose messages the replica has (same UIDs, same
 * GUIDs) appends nothing, and a replica whose modseq reached the seed's has
 * applied all of it.
 * @throws ReplicationError when the replica has another message under a
 *   seeded UID, or cannot take one (a UID below its next UID that it does
 *   not have), or its modseq passed the primary's (a diverged replica).
 */
export async function applySeed(box: Mailbox, c: ShippedCommit, bodies: BodyStore, subject: string): Promise<ApplyResult> {
  const seed = c.seed!;
  if (box.state.logModseq >= c.modseq && seedPartApplied(box, c)) return { applied: 0, skipped: 1 };
  const byUid = new Map(c.bodies.map((b) => [b.uid, b]));
  const state = box.state;
  const wanted: SeededMessage[] = [];
  for (const m of seed.messages) {
    const shipped = byUid.get(m.uid);
    if (!shipped) throw new ReplicationError(`no body shipped for seeded UID ${m.uid}`, { path: subject });
    if (lookupUid(state, m.uid) !== undefined) {
      const guid = (await box.backend.messageInfo(state, m.uid)).guid;
      if (shipped.guid !== "" && guid !== "" && guid !== shipped.guid) {
        throw new ReplicationError(`the replica's UID ${m.uid} is message ${guid}, the primary's seed has ${shipped.guid}: the replica diverged`, { path: box.indexPrefix });
      }
      continue;
    }
    if (m.uid < state.header.nextUid) {
      throw new ReplicationError(`seeded UID ${m.uid} is below the replica's next UID ${state.header.nextUid} and not there: the replica diverged`, { path: box.indexPrefix });
    }
    wanted.push(m);
  }
  let applied = 0;
  // The primary keeps a modseq per message (a CONDSTORE client enabled them): so does the replica, before it appends.
  if (seed.tracksModseqs && (await box.enableModseqs()) !== undefined) applied++;
  if (wanted.length > 0 && (await registerKeywords(box, seed.keywords, wanted.map((m) => m.uid))) !== undefined) applied++;
  if (wanted.length > 0) {
    // Saved as an import saves: the primary's UIDs, GUIDs and INTERNALDATEs kept.
    const tx = box.transaction();
    for (const m of wanted) {
      const shipped = byUid.get(m.uid)!;
      tx.append({
        body: shipped.body ?? (await bodies.get(shipped.objectName!)), flags: [...flagNames(m.flags), ...m.keywords],
        receivedDate: new Date(shipped.receivedTime * 1000), guid: shipped.guid || undefined, uid: m.uid,
      });
    }
    await tx.commit();
    applied++;
  }
  // Dovecot's MODSEQ_UPDATE only raises: each message's towards the primary's, and (UID 0) the log's to the seed's position.
  const updates = seed.modseqs.filter((m) => lookupUid(box.state, m.uid) !== undefined).map((m) => ({ uid: m.uid, modseq: m.modseq }));
  if (seed.last && box.state.logModseq < c.modseq) updates.push({ uid: 0, modseq: c.modseq });
  if (updates.length > 0 && (await box.commitWith(async () => [[{ type: "modseq-update", external: false, sync: false, updates }]])) !== undefined) applied++;
  if (seed.last) {
    if (box.state.logModseq !== c.modseq) {
      throw new ReplicationError(
        `replica modseq ${box.state.logModseq} after the primary's seed at ${c.end.fileSeq}:${c.end.offset} (modseq ${c.modseq}): the replica counted past it and diverged`,
        { path: box.indexPrefix },
      );
    }
    if (seed.nextUid > box.state.header.nextUid && (await box.update({ minNextUid: seed.nextUid })) !== undefined) applied++;
  }
  return applied > 0 ? { applied, skipped: 0 } : { applied: 0, skipped: 1 };
}

/**
 * Registers the primary's keywords the replica lacks, in the primary's
 * order, before the seed's appends (which would register them in the order
 * the messages first use them): the keyword lists, and so every message's
 * keyword bits, then match. The registering records remove the keywords
 * from `uids`, which the replica does not have yet.
 */
async function registerKeywords(box: Mailbox, keywords: readonly string[], uids: readonly number[]) {
  const missing = keywords.filter((k) => !box.state.keywords.includes(k));
  if (missing.length === 0) return undefined;
  return box.commitWith(async () => [keywordRegistrationRecords(missing, toRanges(uids))]);
}

/** Whether the replica has every message of seed part `c` (a part before the last moves no modseq there by itself). */
function seedPartApplied(box: Mailbox, c: ShippedCommit): boolean {
  return c.seed!.messages.every((m) => lookupUid(box.state, m.uid) !== undefined || m.uid < box.state.header.nextUid);
}

function isExternalExpunge(r: LogRecord): boolean {
  return (r.type === "expunge" || r.type === "expunge-guid") && r.external;
}

async function translate(
  box: Mailbox, state: IndexMapState, tx: LogTransaction, byUid: ReadonlyMap<number, ShippedBody>, bodies: BodyStore, subject: string,
): Promise<{ records: LogRecord[]; prepared: PreparedSave | undefined }> {
  const records: LogRecord[] = [];
  let prepared: PreparedSave | undefined;
  // Whether the last ext intro copied is the modseq extension's: its header updates follow it (the others' are left out with them).
  let modseqSelected = false;
  for (const { record } of tx.entries) {
    switch (record.type) {
      case "ext-intro": {
        modseqSelected = modseqFieldOffset(state.extensions) < 0 && isModseqIntro(record);
        if (modseqSelected) records.push(record);
        break;
      }
      case "ext-hdr":
      case "ext-hdr32":
        if (modseqSelected) records.push(record);
        break;
      case "append": {
        const messages: NewMessage[] = [];
        const uids: number[] = [];
        for (const m of record.messages) {
          const shipped = byUid.get(m.uid);
          if (!shipped) throw new ReplicationError(`no body shipped for UID ${m.uid} appended at ${tx.position.fileSeq}:${tx.position.offset}`, { path: subject });
          const body = shipped.body ?? (await bodies.get(shipped.objectName!));
          // The keywords the same transaction gives the message: a driver that keeps them in the file (Maildir names) needs them at save.
          messages.push({ body, flags: m.flags, keywords: keywordsAddedTo(tx, m.uid), receivedTime: shipped.receivedTime, guid: shipped.guid || undefined });
          uids.push(m.uid);
        }
        prepared = await box.backend.saveMessages(state, messages, uids);
        records.push({ ...record, messages: record.messages.map((m) => ({ ...m })) }, ...prepared.records);
        modseqSelected = false;
        break;
      }
      case "flag-update":
      case "keyword-update":
      case "keyword-reset":
      case "attribute-update":
      case "modseq-update":
        records.push(record);
        break;
      case "expunge":
      case "expunge-guid": {
        if (!record.external) break;
        const uids = record.type === "expunge"
          ? record.ranges.flatMap((r) => uidsIn(state, r.uid1, r.uid2))
          : record.expunges.map((e) => e.uid).filter((uid) => lookupUid(state, uid) !== undefined);
        if (uids.length > 0) records.push(...(await box.backend.expungeMessages(state, uids)));
        modseqSelected = false;
        break;
      }
      default:
        break;
    }
  }
  return { records, prepared };
}

function keywordsAddedTo(tx: LogTransaction, uid: number): string[] {
  const out: string[] = [];
  for (const { record } of tx.entries) {
    if (record.type !== "keyword-update") continue;
    if (!record.ranges.some((r) => r.uid1 <= uid && uid <= r.uid2)) continue;
    if (record.modifyType === "add") {
      if (!out.includes(record.name)) out.push(record.name);
    } else {
      const i = out.indexOf(record.name);
      if (i >= 0) out.splice(i, 1);
    }
  }
  return out;
}

function uidsIn(state: IndexMapState, uid1: number, uid2: number): number[] {
  const span = state.records.rangeOfUids(uid1, uid2);
  if (!span) return [];
  const out: number[] = [];
  for (let i = span[0]; i <= span[1]; i++) out.push(state.records.uidAt(i));
  return out;
}
