import { readLog } from "./log/view.js";
import { isBefore } from "./projections/load-state.js";
import type { Mailbox } from "./mailbox.js";
import { position } from "./projections/read.js";
import type { IndexMapState } from "./projections/state.js";
import { createView, seqOf, seqRange, syncView, uidAt, type MailboxView, type ViewChanges } from "./projections/view.js";
import { highestModseq } from "./projections/read.js";

/**
 * One client's view of a mailbox (an IMAP session's selected mailbox): its
 * MSNs change only when it syncs, and expunges can be held back (IDLE may
 * not announce EXPUNGE while a command is running).
 */
export class MailboxViewHandle {
  private view: MailboxView;

  constructor(private readonly mailbox: Mailbox, state: IndexMapState) {
    const uids = new Uint32Array(state.records.count);
    for (let seq = 1; seq <= uids.length; seq++) uids[seq - 1] = state.records.uidAt(seq - 1);
    this.view = createView(position(state), uids, highestModseq(state));
  }

  get messageCount(): number {
    return this.view.uids.length;
  }

  get current(): MailboxView {
    return this.view;
  }

  uidAt(seq: number): number | undefined {
    return uidAt(this.view, seq);
  }

  seqOf(uid: number): number | undefined {
    return seqOf(this.view, uid);
  }

  seqRange(uid1: number, uid2: number): [number, number] | undefined {
    return seqRange(this.view, uid1, uid2);
  }

  /**
   * Catches the mailbox up with the log and moves the view to it, returning
   * what changed since the view's last sync. With `expunges: false`,
   * expunged messages keep their MSNs until a later sync.
   */
  async sync(options: { expunges?: boolean } = {}): Promise<ViewChanges> {
    await this.mailbox.refresh();
    const upTo = this.mailbox.position;
    const transactions = readLog(this.mailbox.backend.indexPrefix, this.view.position).transactions.filter((tx) => !isBefore(upTo, tx.end));
    const { view, changes } = syncView(this.view, transactions, options);
    this.view = view;
    return changes;
  }
}
