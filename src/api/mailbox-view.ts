import { readLog } from "../log/view.js";
import { advanceWithEffects } from "../projections/apply.js";
import { isBefore } from "../index-io/load-state.js";
import type { Mailbox } from "./mailbox.js";
import { highestModseq, position } from "../projections/read.js";
import type { IndexMapState } from "../projections/state.js";
import { createView, seqOf, seqRange, syncView, uidAt, type MailboxView, type ViewChanges } from "../projections/view.js";

/**
 * One client's view of a mailbox (an IMAP session's selected mailbox): its
 * MSNs change only when it syncs, and expunges can be held back (IDLE may
 * not announce EXPUNGE while a command is running).
 */
export class MailboxViewHandle {
  private view: MailboxView;
  /**
   * The index map at the view's position (as a Dovecot view keeps its map):
   * a sync folds the new transactions onto it for their effects. States are
   * immutable with shared records, so holding it costs only what changed since.
   */
  private state: IndexMapState;

  constructor(private readonly mailbox: Mailbox, state: IndexMapState) {
    this.state = state;
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
    const log = readLog(this.mailbox.backend.indexPrefix, this.view.position);
    const transactions = log.transactions.filter((tx) => !isBefore(upTo, tx.end));
    const advanced = advanceWithEffects(this.state, transactions, log.headers);
    const { view, changes } = syncView(this.view, advanced.effects, options);
    this.state = advanced.state;
    this.view = view;
    return changes;
  }
}
