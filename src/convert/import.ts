/**
 * Copying every mailbox of one storage into another, whatever the two
 * formats, through the public API only (imported from its modules: index.ts
 * re-exports this one): each message's stored bytes, flags, keywords,
 * received time and GUID (Mailbox.fetch) go into append transactions of the
 * target, in UID order, in batches.
 *
 * Numbering, as dsync keeps it: when the target mailbox is new or has no
 * messages (and never gave out the UIDs to keep), it takes the source's
 * UIDVALIDITY (Storage.createMailbox's uidValidity, Mailbox.update), every
 * message keeps its UID, gaps included (AppendInput.uid), and next UID is
 * raised to the source's (Mailbox.update's minNextUid). A target that
 * already has messages keeps its own UIDVALIDITY; new messages then keep
 * their UIDs only when both mailboxes share the UIDVALIDITY (an earlier
 * import) and the UIDs are still free, and are renumbered otherwise. Each
 * mailbox reports what it got, and why.
 *
 * A second run copies nothing twice: a source message the target mailbox
 * already had is skipped (by GUID, or by content where GUIDs do not carry
 * over: present-messages.ts).
 */
import { cleanupAfter } from "../shared/cleanup.js";
import { messageCount } from "../projections/read.js";
import { searchUids } from "../api/search.js";
import type { Mailbox } from "../api/mailbox.js";
import type { Storage } from "../api/storage.js";
import { ImportBatch } from "./import-batch.js";
import { PresentMessages, usableGuid } from "./present-messages.js";

/** Where an import is. */
export interface ImportProgress {
  readonly mailbox: string;
  /** 0-based index of the mailbox being copied. */
  readonly mailboxIndex: number;
  readonly mailboxCount: number;
  /** Source messages done so far (copied or skipped), all mailboxes together. */
  readonly messagesDone: number;
  readonly messagesTotal: number;
}

export interface ImportOptions {
  /** Called after each committed batch (and once per mailbox at its start). */
  onProgress?: (p: ImportProgress) => void;
  /** Only these mailboxes (default: all of the source). */
  mailboxes?: readonly string[];
  /**
   * Most messages per target transaction (default 2,000: doveadm import
   * commits once per mailbox; batches bound what a failed import leaves to
   * redo, and an mdbox target stages the data as it comes either way).
   */
  batchMessages?: number;
  /**
   * Most body bytes a target transaction holds in memory (default 32 MiB):
   * where the target writes data ahead of the commit (mdbox,
   * MailboxTransaction.stage), it holds only what came since the last
   * stage; elsewhere every body of the transaction until it commits.
   */
  batchBytes?: number;
}

/** What happened to one mailbox. */
export interface ImportedMailbox {
  readonly name: string;
  /** Messages copied. */
  readonly messages: number;
  /** Bytes of the messages copied, as the source stores them. */
  readonly bytes: number;
  /** Source messages the target mailbox already had: not copied again. */
  readonly skipped: number;
  /** Every copied message got its source UID (true when none was copied and none would have had to change). */
  readonly uidsKept: boolean;
  /** Why the copied messages got new UIDs (undefined when uidsKept). */
  readonly renumberedBecause?: string;
  /** The target mailbox has the source's UIDVALIDITY now. */
  readonly uidValidityKept: boolean;
  readonly sourceUidValidity: number;
  readonly targetUidValidity: number;
}

/** Whether the copies keep their source UIDs (see the module comment). */
type Numbering = { readonly keep: true; readonly setUidValidity: boolean } | { readonly keep: false; readonly why: string };

/**
 * @param targetCount messages the target mailbox had before the import.
 * @param firstUid the first source UID to copy; undefined when none is.
 */
function numberingFor(dst: Mailbox, targetCount: number, sourceUidValidity: number, firstUid: number | undefined): Numbering {
  const nextUid = dst.state.header.nextUid;
  if (targetCount === 0) {
    if (firstUid === undefined || firstUid >= nextUid) return { keep: true, setUidValidity: dst.uidValidity !== sourceUidValidity };
    return { keep: false, why: `the target mailbox gave out UIDs up to ${nextUid - 1} before` };
  }
  if (dst.uidValidity !== sourceUidValidity) return { keep: false, why: "the target mailbox already has messages, under another UIDVALIDITY" };
  if (firstUid !== undefined && firstUid < nextUid) return { keep: false, why: `the target mailbox already has messages, and UID ${firstUid} is below its next UID ${nextUid}` };
  return { keep: true, setUidValidity: false };
}

/**
 * Copies the mailboxes of `source` into `target` (creating missing ones).
 * @returns one entry per mailbox, in the order copied.
 * @throws InvalidArgumentError when another writer took a UID being kept
 *   between the decision and the commit; whatever the storages throw.
 */
export async function importMailboxes(source: Storage, target: Storage, opts: ImportOptions = {}): Promise<ImportedMailbox[]> {
  const names = opts.mailboxes ? [...opts.mailboxes] : await source.listMailboxes();
  const counts: number[] = [];
  for (const name of names) {
    const box = await source.openMailbox(name);
    counts.push(messageCount(await box.refresh()));
    await box.close();
  }
  const progress = { done: 0, total: counts.reduce((a, b) => a + b, 0) };
  const existing = new Set(await target.listMailboxes());
  const results: ImportedMailbox[] = [];
  for (let m = 0; m < names.length; m++) {
    const report = () => opts.onProgress?.({ mailbox: names[m], mailboxIndex: m, mailboxCount: names.length, messagesDone: progress.done, messagesTotal: progress.total });
    results.push(await importMailbox(source, target, names[m], existing.has(names[m]), { ...opts, report, progress }));
  }
  // mdbox: the map's last batches too (a later expunge, fetch or purge would replay them).
  await target.indexLogTail();
  return results;
}

interface MailboxImportContext extends ImportOptions {
  readonly report: () => void;
  readonly progress: { done: number };
}

async function importMailbox(source: Storage, target: Storage, name: string, exists: boolean, ctx: MailboxImportContext): Promise<ImportedMailbox> {
  const batchMessages = ctx.batchMessages ?? 2000;
  const batchBytes = ctx.batchBytes ?? 32 * 1024 * 1024;
  ctx.report();
  const src = await source.openMailbox(name);
  let dst: Mailbox | undefined;
  try {
    const state = await src.refresh();
    // A new mailbox takes the source's UIDVALIDITY from its first log record, as dsync creates it.
    if (!exists && name !== "INBOX") await target.createMailbox(name, { uidValidity: src.uidValidity });
    dst = await target.openMailbox(name);
    await dst.refresh();
    const present = new PresentMessages(dst, target.format !== "mbox");
    let numbering: Numbering | undefined;
    let copied = 0;
    let bytes = 0;
    let skipped = 0;
    const batch = new ImportBatch(dst, { messages: batchMessages, bytes: batchBytes }, (n) => {
      ctx.progress.done += n;
      copied += n;
      ctx.report();
    });
    try {
      for await (const m of src.fetch(searchUids(state, [{ type: "all" }]), ["body", "flags", "receivedTime", "guid"])) {
        if (await present.take(m.guid, m.body)) {
          skipped++;
          ctx.progress.done++;
          continue;
        }
        if (numbering === undefined) {
          numbering = numberingFor(dst, present.count, src.uidValidity, m.uid);
          if (numbering.keep && numbering.setUidValidity) await dst.update({ uidValidity: src.uidValidity });
        }
        const guid = usableGuid(m.guid);
        await batch.add({
          body: m.body,
          flags: m.flags,
          receivedDate: new Date(m.receivedTime * 1000),
          ...(guid !== undefined ? { guid } : {}),
          ...(numbering.keep ? { uid: m.uid } : {}),
        });
        bytes += m.body.length;
      }
      await batch.commit();
    } catch (err) {
      await cleanupAfter(err, () => batch.discard());
      throw err;
    }
    if (numbering === undefined) {
      numbering = numberingFor(dst, present.count, src.uidValidity, undefined);
      if (numbering.keep && numbering.setUidValidity) await dst.update({ uidValidity: src.uidValidity });
    }
    // UIDNEXT too, as the source has it (its last messages may have been expunged).
    if (numbering.keep) await dst.update({ minNextUid: state.header.nextUid });
    // Let drivers that write flags back lazily (mbox, Maildir) settle now.
    await dst.refresh();
    // The last batches are not replayed by every later open (issue #11): up to 128 KB of log otherwise.
    await dst.indexLogTail();
    return {
      name,
      messages: copied,
      bytes,
      skipped,
      uidsKept: numbering.keep,
      ...(numbering.keep ? {} : { renumberedBecause: numbering.why }),
      uidValidityKept: dst.uidValidity === src.uidValidity,
      sourceUidValidity: src.uidValidity,
      targetUidValidity: dst.uidValidity,
    };
  } finally {
    await src.close();
    await dst?.close();
  }
}
