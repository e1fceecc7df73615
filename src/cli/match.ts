import { MailstoreError } from "../shared/errors.js";
import { searchRanges, searchUids, type IndexMapState, type Mailbox, type SearchQuery, type Storage, type UidRange } from "../index.js";
import { isMailboxPattern, matchMailboxes } from "./context.js";
import type { CliQuery } from "./query.js";

/** Runs `fn` for each mailbox the query names (all when none), with the matching UIDs. */
export function forEachMatch(storage: Storage, query: CliQuery, fn: (box: Mailbox, uids: number[]) => Promise<void>): Promise<void> {
  return forEachSearched(storage, query, searchUids, fn);
}

/** forEachMatch with the matches as the ranges a transaction takes (searchRanges: no array of every UID). */
export function forEachMatchRanges(storage: Storage, query: CliQuery, fn: (box: Mailbox, ranges: UidRange[]) => Promise<void>): Promise<void> {
  return forEachSearched(storage, query, searchRanges, fn);
}

async function forEachSearched<T>(storage: Storage, query: CliQuery, search: (state: IndexMapState, keys: SearchQuery) => T, fn: (box: Mailbox, found: T) => Promise<void>): Promise<void> {
  // Names alone need no listing, which walks the whole mailbox tree (as `mailbox status` does): it is made
  // only when a name cannot be opened, to tell a missing mailbox from one without an index.
  const all = query.mailboxes.length === 0 || query.mailboxes.some(isMailboxPattern);
  let listed = all ? await storage.listMailboxes() : undefined;
  for (const name of matchMailboxes(listed ?? [], query.mailboxes)) {
    let box: Mailbox;
    try {
      box = await storage.openMailbox(name);
    } catch (err) {
      // doveadm prints nothing for a search in a mailbox that does not exist (a listed one without an index, read-only, is an error).
      if (!(err instanceof MailstoreError && err.code === "NOT_FOUND")) throw err;
      listed ??= await storage.listMailboxes();
      if (!listed.includes(name)) continue;
      throw err;
    }
    await box.catchUp();
    const keys = query.keys.length > 0 ? query.keys : [{ type: "all" as const }];
    // A search of one uid reads the rows it needs only (Mailbox.readState).
    await fn(box, box.readState((state) => search(state, keys)));
  }
}

