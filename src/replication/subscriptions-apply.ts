/**
 * Applying a shipped subscriptions list (wire.ts StorageOp "subscriptions")
 * to a replica's own store: the replica subscribes to what the list has and
 * it lacks, and unsubscribes from what it has and the list lacks, through
 * its own Storage.subscribe/unsubscribe, so its driver writes the file in
 * its own format's spelling (separator, modified UTF-7, `.subscriptions`
 * for mbox) and logs the changes to dovecot.mailbox.log as doveadm would.
 * The list is the whole state, so applying it again, or an older one and
 * then this one, ends with the same file: nothing is duplicated.
 */
import type { Storage } from "../api/storage.js";
import { InvalidArgumentError } from "../shared/errors.js";
import type { StorageEventResult } from "./storage-events.js";

/**
 * Makes `storage`'s subscriptions the names of `names` ("/"-separated API
 * names). A name this store cannot spell (a level holding a Maildir++ "."
 * separator) is left out, and said so.
 * @returns applied when the file changed, else why not.
 */
export async function applySubscriptions(storage: Storage, names: readonly string[]): Promise<StorageEventResult> {
  const wanted = new Set(names);
  const had = await storage.listSubscriptions();
  const have = new Set(had);
  const unnamable: string[] = [];
  let changed = false;
  for (const name of names) {
    if (have.has(name)) continue;
    try {
      changed = (await storage.subscribe(name)) || changed;
    } catch (err) {
      if (!(err instanceof InvalidArgumentError)) throw err;
      unnamable.push(name);
    }
  }
  for (const name of had) if (!wanted.has(name)) changed = (await storage.unsubscribe(name)) || changed;
  const why = unnamable.length > 0 ? `; not a name this ${storage.format} store can have: ${unnamable.join(", ")}` : "";
  return changed ? { applied: true } : { applied: false, reason: `the subscriptions are the primary's already${why}` };
}
