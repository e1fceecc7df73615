/**
 * An mdbox save's message data written ahead of its commit (as Dovecot's
 * save context writes each message into m.N as it is saved, and only the
 * commit syncs the files and records them in the map): a transaction of
 * many messages then holds each one's placement and GUID, not its body.
 * The files stay flock()ed (existing ones) or temp-named (new ones) until
 * the commit's map transaction names and records them; release() closes
 * them, or takes the data back when no commit recorded it.
 */
import { generateMessageGuid } from "../dbox/guid.js";
import { toLfLineEndings } from "../dbox/message-body.js";
import type { NewMessage, SaveStage } from "../driver.js";
import { InvalidArgumentError } from "../../shared/errors.js";
import type { AppendSession, Placement } from "./append-session.js";
import type { MdboxContext } from "./context.js";
import { newSaveSession, placeMessage } from "./save.js";

export class MdboxSaveStage implements SaveStage {
  readonly session: AppendSession;
  /** Each staged message's placement and GUID, in order: in columns, not an object per message (a stage may hold thousands). */
  private readonly targets: Array<Placement["target"]> = [];
  private readonly offsets: number[] = [];
  private readonly sizes: number[] = [];
  private readonly guids: string[] = [];
  private released = false;

  constructor(private readonly ctx: MdboxContext, private readonly origMailbox: string) {
    this.session = newSaveSession(ctx);
  }

  get count(): number {
    return this.guids.length;
  }

  /**
   * Whether a commit that failed may run again with this stage: nothing
   * released or named yet, and nothing in the session but what add() placed
   * (a commit that placed more there has no record of where, and its retry
   * would write those messages again after them, bytes no map record covers).
   */
  get retryable(): boolean {
    return !this.released && !this.session.published && this.session.placed === this.count;
  }

  async add(messages: readonly NewMessage[]): Promise<void> {
    if (this.released) throw new InvalidArgumentError("save stage already released");
    const map = this.ctx.map.open();
    const now = Math.floor(Date.now() / 1000);
    for (const m of messages) {
      if (m.copyOf !== undefined) throw new InvalidArgumentError("a copy is not staged: saveMessages decides whether it shares the source's data");
      const fresh = { body: toLfLineEndings(m.body), guid: m.guid ?? generateMessageGuid(), receivedTime: m.receivedTime ?? now };
      const { target, offset, size } = placeMessage(this.session, map, fresh, this.origMailbox);
      this.targets.push(target);
      this.offsets.push(offset);
      this.sizes.push(size);
      this.guids.push(fresh.guid);
    }
  }

  /** The staged message `i`, for saveMessages. */
  at(i: number): { readonly placement: Placement; readonly guid: string } {
    return { placement: { target: this.targets[i], offset: this.offsets[i], size: this.sizes[i] }, guid: this.guids[i] };
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }
}
