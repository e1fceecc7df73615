/**
 * Copying every mailbox of one storage into another, whatever the two
 * formats, through the public API only (imported from its modules: index.ts
 * re-exports this one): each message's stored bytes, flags, keywords,
 * received time and GUID (Mailbox.fetch) go into append transactions of the
 * target, in UID order, in batches.
 *
 * UIDs: the API gives appended messages the target's next UIDs, so a source
 * mailbox keeps its UIDs exactly when its UIDs run without gaps from the
 * target's next UID (a fresh target mailbox and a source that never lost
 * its last messages… or any message: gaps cannot be reproduced). UIDVALIDITY
 * is always the target's own. Each mailbox reports which it got. Keeping
 * both in every case needs a small API addition (a transaction-level
 * "minimum next UID", Dovecot's mailbox_update.min_next_uid, and a
 * UIDVALIDITY for a new mailbox, mailbox_update.uid_validity).
 */
import { LockTimeoutError } from "../shared/errors.js";
import { messageCount } from "../projections/read.js";
import { searchUids } from "../api/search.js";
import type { Mailbox } from "../api/mailbox.js";
import type { Storage } from "../api/storage.js";
import type { AppendInput, TransactionCommitResult } from "../api/mailbox-transaction.js";

/** Where an import is. */
export interface ImportProgress {
  readonly mailbox: string;
  /** 0-based index of the mailbox being copied. */
  readonly mailboxIndex: number;
  readonly mailboxCount: number;
  /** Messages copied so far, all mailboxes together. */
  readonly messagesDone: number;
  readonly messagesTotal: number;
}

export interface ImportOptions {
  /** Called after each committed batch (and once per mailbox at its start). */
  onProgress?: (p: ImportProgress) => void;
  /** Only these mailboxes (default: all of the source). */
  mailboxes?: readonly string[];
  /** Most messages per target transaction (default 500). */
  batchMessages?: number;
  /** Most body bytes per target transaction (default 32 MiB). */
  batchBytes?: number;
}

/** What happened to one mailbox. */
export interface ImportedMailbox {
  readonly name: string;
  readonly messages: number;
  /** Every message got its source UID. */
  readonly uidsKept: boolean;
  readonly sourceUidValidity: number;
  readonly targetUidValidity: number;
}

/** Attempts at committing one batch when the target is busy (LockTimeoutError). */
const COMMIT_ATTEMPTS = 20;

/**
 * Commits `batch` as one append transaction, again when another process held
 * a lock the target could not wait for (an mbox whose dotlock a delivering
 * MDA or a Dovecot save holds).
 */
async function commitWithRetry(box: Mailbox, batch: readonly AppendInput[]): Promise<TransactionCommitResult> {
  for (let attempt = 1; ; attempt++) {
    const tx = box.transaction();
    for (const m of batch) tx.append(m);
    try {
      return await tx.commit();
    } catch (err) {
      if (!(err instanceof LockTimeoutError) || attempt >= COMMIT_ATTEMPTS) throw err;
      await new Promise((r) => setTimeout(r, 50 * attempt));
    }
  }
}

/** GUID of a message whose identifying headers are all missing (mbox header MD5 of nothing): not an identity. */
const EMPTY_MD5_GUID = "d41d8cd98f00b204e9800998ecf8427e";

/**
 * Copies the mailboxes of `source` into `target` (creating missing ones),
 * appending after whatever the target mailboxes already hold.
 * @returns one entry per mailbox, in the order copied.
 */
export async function importMailboxes(source: Storage, target: Storage, opts: ImportOptions = {}): Promise<ImportedMailbox[]> {
  const names = opts.mailboxes ? [...opts.mailboxes] : await source.listMailboxes();
  const batchMessages = opts.batchMessages ?? 500;
  const batchBytes = opts.batchBytes ?? 32 * 1024 * 1024;

  const counts: number[] = [];
  for (const name of names) {
    const box = await source.openMailbox(name);
    counts.push(messageCount(await box.refresh()));
    await box.close();
  }
  const total = counts.reduce((a, b) => a + b, 0);
  const existing = new Set(await target.listMailboxes());
  let done = 0;
  const results: ImportedMailbox[] = [];

  for (let m = 0; m < names.length; m++) {
    const name = names[m];
    const report = () => opts.onProgress?.({ mailbox: name, mailboxIndex: m, mailboxCount: names.length, messagesDone: done, messagesTotal: total });
    report();
    if (!existing.has(name) && name !== "INBOX") await target.createMailbox(name);
    const src = await source.openMailbox(name);
    const dst = await target.openMailbox(name);
    let uidsKept = true;
    let copied = 0;
    try {
      const state = await src.refresh();
      await dst.refresh();
      let batch: AppendInput[] = [];
      let pendingUids: number[] = [];
      let pendingBytes = 0;
      const flush = async () => {
        if (batch.length === 0) return;
        const { appendedUids } = await commitWithRetry(dst, batch);
        if (appendedUids.some((uid, i) => uid !== pendingUids[i])) uidsKept = false;
        done += batch.length;
        copied += batch.length;
        batch = [];
        pendingUids = [];
        pendingBytes = 0;
        report();
      };
      for await (const m of src.fetch(searchUids(state, [{ type: "all" }]), ["body", "flags", "receivedTime", "guid"])) {
        batch.push({
          body: m.body,
          flags: m.flags,
          receivedDate: new Date(m.receivedTime * 1000),
          ...(m.guid !== "" && m.guid !== EMPTY_MD5_GUID ? { guid: m.guid } : {}),
        });
        pendingUids.push(m.uid);
        pendingBytes += m.body.length;
        if (batch.length >= batchMessages || pendingBytes >= batchBytes) await flush();
      }
      await flush();
      // Let drivers that write flags back lazily (mbox, Maildir) settle now.
      await dst.refresh();
      results.push({ name, messages: copied, uidsKept, sourceUidValidity: src.uidValidity, targetUidValidity: dst.uidValidity });
    } finally {
      await src.close();
      await dst.close();
    }
  }
  return results;
}
