/**
 * The target side of an import: messages go into one append transaction
 * until it reaches the batch limits, then it is committed. Bodies are
 * staged every STAGE_BYTES (written into the target's files where it can:
 * mdbox), so a transaction of many messages holds little of them; a
 * target that writes at commit holds them all, which `batchBytes` bounds.
 */
import { LockTimeoutError } from "../shared/errors.js";
import { cleanupAfter } from "../shared/cleanup.js";
import type { Mailbox } from "../api/mailbox.js";
import type { AppendInput, MailboxTransaction } from "../api/mailbox-transaction.js";

/** Attempts at committing one batch when the target is busy (LockTimeoutError). */
const COMMIT_ATTEMPTS = 20;

/**
 * Body bytes appended before they are staged: a few dozen messages, so that
 * bodies do not pile up waiting for the garbage collector.
 */
export const STAGE_BYTES = 256 * 1024;

export class ImportBatch {
  private tx: MailboxTransaction | undefined;
  /** Messages in the open transaction. */
  private count = 0;
  /** Body bytes the open transaction still held after its last stage(): it stages again once it holds STAGE_BYTES more. */
  private heldAfterStage = 0;

  /**
   * @param onCommit told how many messages each commit recorded.
   */
  constructor(
    private readonly box: Mailbox,
    private readonly limits: { readonly messages: number; readonly bytes: number },
    private readonly onCommit: (messages: number) => void,
  ) {}

  async add(input: AppendInput): Promise<void> {
    const tx = (this.tx ??= this.box.transaction());
    tx.append(input);
    this.count++;
    if (tx.heldBytes - this.heldAfterStage >= STAGE_BYTES) this.heldAfterStage = await tx.stage();
    if (this.count >= this.limits.messages || tx.heldBytes >= this.limits.bytes) await this.commit();
  }

  /**
   * Commits the open transaction, again when another process held a lock
   * the target could not wait for (an mbox whose dotlock a delivering MDA
   * or a Dovecot save holds; an mdbox map a purge holds).
   */
  async commit(): Promise<void> {
    const tx = this.tx;
    if (tx === undefined) return;
    for (let attempt = 1; ; attempt++) {
      try {
        await tx.commit();
        break;
      } catch (err) {
        if (!(err instanceof LockTimeoutError) || !tx.committable || attempt >= COMMIT_ATTEMPTS) {
          if (tx.committable) await cleanupAfter(err, () => tx.discard());
          this.tx = undefined;
          throw err;
        }
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    }
    const n = this.count;
    this.tx = undefined;
    this.count = this.heldAfterStage = 0;
    this.onCommit(n);
  }

  /** After a failure: what the open transaction wrote ahead is taken back. */
  async discard(): Promise<void> {
    const tx = this.tx;
    this.tx = undefined;
    if (tx?.committable) await tx.discard();
  }
}
