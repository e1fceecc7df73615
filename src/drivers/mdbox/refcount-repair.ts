/**
 * Repairing refcounts that are too low. An expunge lowers the refcount in
 * the map and then removes the mailbox record (Dovecot does the same); a
 * crash between the two leaves a record pointing at a refcount-0 message,
 * which Dovecot's next purge would delete. When purge notices such a
 * message, this raises its refcount back to the number of records pointing
 * at it — counted under each mailbox's lock, where no expunge (ours or
 * Dovecot's, which holds the mailbox lock for its whole sync) can be half
 * done, and raised under the map lock inside it (mailbox, then map: the
 * order every engine save and expunge uses).
 */
import type { MdboxContext } from "./context.js";
import { forEachMailboxMapUid } from "./referenced-map-uids.js";
import { writeMailbox } from "./mailbox-writer.js";
import { REFCOUNT_MAX, refIncRecords } from "../../projections/mdbox-map-format.js";
import { lookupMapEntry } from "../../projections/mdbox-map-view.js";

/**
 * @param suspects map uids with refcount 0 that records of the mailboxes at
 *   `mailboxPrefixes` pointed at when read without a lock.
 * @returns the map uids whose refcount was raised.
 */
export async function repairLowRefcounts(ctx: MdboxContext, suspects: ReadonlySet<number>, mailboxPrefixes: readonly string[]): Promise<number[]> {
  const counted = new Map<number, number>();
  const raised = new Set<number>();
  for (const prefix of mailboxPrefixes) {
    await writeMailbox(prefix, async (state) => {
      const here = new Map<number, number>();
      forEachMailboxMapUid(state, (mapUid) => {
        if (suspects.has(mapUid)) here.set(mapUid, (here.get(mapUid) ?? 0) + 1);
      });
      for (const [mapUid, n] of here) counted.set(mapUid, (counted.get(mapUid) ?? 0) + n);
      await ctx.map.transact(async (mapState) => {
        const incs: Array<{ mapUid: number; diff: number }> = [];
        for (const mapUid of here.keys()) {
          const e = lookupMapEntry(mapState, mapUid);
          const want = Math.min(counted.get(mapUid)!, REFCOUNT_MAX);
          if (e !== undefined && e.refcount < want) {
            incs.push({ mapUid, diff: want - e.refcount });
            raised.add(mapUid);
          }
        }
        const records = refIncRecords(incs, { external: false });
        return records.length > 0 ? [records] : [];
      }, { nested: true });
      return [];
    }, { fsync: ctx.settings.fsync });
  }
  return [...raised];
}
