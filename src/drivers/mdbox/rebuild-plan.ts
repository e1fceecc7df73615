/**
 * What a rebuild will do, decided from what was read (pure, no I/O), as
 * mdbox-storage-rebuild.c decides it:
 *
 * - the map keeps a record whose {file_id, offset, size} is a message found
 *   in the files; other records are expunged; found messages without a
 *   record get new map uids;
 * - of messages with one GUID, mailboxes point at the first one a map
 *   record points at, else the first found; the others get refcount 0 (a
 *   purge removes them);
 * - a mailbox record is matched by its GUID, else by its map uid (only when
 *   its header names this map), and then points at that message; unmatched
 *   records go, and so do records read from a mailbox's dovecot.index or
 *   backup (not its log) whose message the old map had at refcount 0: they
 *   predate the expunge;
 * - a message no mailbox points at, and that the old map did not already
 *   count as deleted (refcount 0) nor, when the intact map has no record of
 *   it, a mailbox log shows expunged (by GUID: a purge killed before its
 *   unlink leaves such messages in a file the map no longer knows), goes back to its original mailbox (metadata
 *   `B`), else INBOX, without flags (Dovecot loses them too);
 * - refcounts become the number of mailbox records pointing at each message.
 */
import { GUID_128_SIZE } from "../dbox/guid.js";
import type { FoundMessages } from "./found-messages.js";
import { GuidTable } from "./guid-table.js";
import type { MailboxMessageRef, MailboxSnapshot } from "./mailbox-refs.js";
import type { MapRow } from "../../projections/mdbox-map-view.js";

const SEEN_ZERO = 1;
const DUPLICATE = 2;
const UNMAPPED = 4;

/**
 * The found messages with the map uid each will have, named by their index
 * in `found` (typed arrays, no object per message: issue #11).
 */
export class PlacedMessages {
  constructor(
    readonly found: FoundMessages,
    /** The map uid of each. */
    readonly mapUids: Uint32Array,
    private readonly marks: Uint8Array,
    /** The refcount the old map's record of each has (0 where unmapped). */
    private readonly oldRefcounts: Uint32Array,
  ) {}

  /** The old map's record of message i has refcount `refcount` already. */
  refcountIs(i: number, refcount: number): boolean {
    return (this.marks[i] & UNMAPPED) === 0 && this.oldRefcounts[i] === refcount;
  }

  get count(): number {
    return this.found.count;
  }

  /** The old map had it at refcount 0, or it is a duplicate: it stays deleted when nothing points at it. */
  seenZero(i: number): boolean {
    return (this.marks[i] & SEEN_ZERO) !== 0;
  }

  /** An earlier message (or the one a map record points at) has the same GUID. */
  duplicate(i: number): boolean {
    return (this.marks[i] & DUPLICATE) !== 0;
  }

  /** The old map had no record of it (new, or left in a file a killed purge had replaced). */
  unmapped(i: number): boolean {
    return (this.marks[i] & UNMAPPED) !== 0;
  }
}

/** The map half of a rebuild plan. */
export interface MapPlan {
  readonly placed: PlacedMessages;
  /** Map uids whose record points at nothing found (or at a message another record took). */
  readonly expunge: number[];
  /** Found messages (indexes) that get a new map record, in map uid order. */
  readonly append: number[];
  /** The canonical message of each GUID. */
  readonly canonical: GuidTable;
}

/**
 * Found messages by {file_id, offset}: the messages of a file are one run
 * of `found`, in offset order, searched by halves (no Map entry per message).
 */
class FilePlaces {
  private runs: Map<number, { start: number; end: number }> | undefined;

  constructor(private readonly found: FoundMessages) {}

  /** @returns the index of the message at `offset` of file `fileId`, or -1. */
  find(fileId: number, offset: number): number {
    // Built on the first map row: a map lost with the indexes has none.
    this.runs ??= fileRuns(this.found);
    const run = this.runs.get(fileId);
    if (run === undefined) return -1;
    const offsets = this.found.offsets;
    let lo = run.start;
    let hi = run.end;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (offsets[mid] < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo < run.end && offsets[lo] === offset ? lo : -1;
  }
}

/** The run of `found` each file's messages are. */
function fileRuns(found: FoundMessages): Map<number, { start: number; end: number }> {
  const runs = new Map<number, { start: number; end: number }>();
  for (let i = 0; i < found.count; i++) {
    const run = runs.get(found.fileIds[i]);
    if (run === undefined) runs.set(found.fileIds[i], { start: i, end: i + 1 });
    else run.end = i + 1;
  }
  return runs;
}

/** Calls `visit` with every placed map record (forEachMapRow over the map's state). */
export type MapRowWalk = (visit: (row: Readonly<MapRow>) => void) => void;

/** @returns the map plan; new map uids start at `nextMapUid`. */
export function planMap(found: FoundMessages, forEachMapRow: MapRowWalk, nextMapUid: number): MapPlan {
  const n = found.count;
  const places = new FilePlaces(found);
  // 0 until a map record is found for the message (map uids start at 1).
  const mapUids = new Uint32Array(n);
  const marks = new Uint8Array(n);
  const oldRefcounts = new Uint32Array(n);
  const expunge: number[] = [];
  forEachMapRow((e) => {
    const i = places.find(e.fileId, e.offset);
    if (i < 0 || mapUids[i] !== 0 || found.sizes[i] !== e.size) {
      expunge.push(e.mapUid);
    } else {
      mapUids[i] = e.mapUid;
      oldRefcounts[i] = e.refcount;
      if (e.refcount === 0) marks[i] |= SEEN_ZERO;
    }
  });
  // Of messages sharing a GUID, the first the map knows is the one kept: a purge killed
  // before its unlink leaves the old file, whose copies come first but are no longer mapped.
  const canonical = new GuidTable(found.guids, n);
  // Each message's slot, kept for the pass below: a GUID's slot never moves (nothing is
  // removed from the table), so each GUID is hashed and probed once, not twice.
  const slots = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const slot = canonical.slotOfIndex(i);
    slots[i] = slot;
    const cur = canonical.indexIn(slot);
    if (cur < 0 || (mapUids[cur] === 0 && mapUids[i] !== 0)) canonical.put(slot, i);
  }
  const append: number[] = [];
  let next = nextMapUid;
  for (let i = 0; i < n; i++) {
    if (canonical.indexIn(slots[i]) !== i) marks[i] |= DUPLICATE | SEEN_ZERO;
    if (mapUids[i] === 0) {
      marks[i] |= UNMAPPED;
      mapUids[i] = next++;
      append.push(i);
    }
  }
  return { placed: new PlacedMessages(found, mapUids, marks, oldRefcounts), expunge, append, canonical };
}

/** Matching mailbox records to placed messages. */
export class MessageIndex {
  private byMapUid: Map<number, number> | undefined;

  constructor(private readonly plan: MapPlan) {}

  /**
   * The message a mailbox record stands for: by GUID, else by map uid when
   * `trustMapUid` (the mailbox header names the map those uids are from).
   * @returns its index, or -1.
   */
  match(ref: MailboxMessageRef, trustMapUid: boolean): number {
    if (ref.guid128.length === GUID_128_SIZE && ref.guid128.some((b) => b !== 0)) {
      const byGuid = this.plan.canonical.find(ref.guid128, 0);
      if (byGuid >= 0) return byGuid;
    }
    if (!trustMapUid || ref.mapUid === 0) return -1;
    const m = this.indexOfMapUid(ref.mapUid);
    return m < 0 ? -1 : this.plan.canonical.find(this.plan.placed.found.guids, m * GUID_128_SIZE);
  }

  /** @returns the index of the placed message with map uid `mapUid`, or -1. */
  indexOfMapUid(mapUid: number): number {
    // Built on first use: a rebuild after index loss matches nothing by map uid.
    if (this.byMapUid === undefined) {
      this.byMapUid = new Map();
      const mapUids = this.plan.placed.mapUids;
      for (let i = 0; i < mapUids.length; i++) this.byMapUid.set(mapUids[i], i);
    }
    return this.byMapUid.get(mapUid) ?? -1;
  }
}

/** One mailbox's part of the plan. */
export interface MailboxPlan {
  readonly name: string;
  /** Undefined for a mailbox that only exists to take restored messages. */
  readonly snapshot: MailboxSnapshot | undefined;
  /** The mailbox log is unreadable or missing: write a new one. */
  readonly recreate: boolean;
  /** Records that point at a found message (for a recreated mailbox: the ones to re-add), with its index. */
  readonly kept: Array<{ ref: MailboxMessageRef; msg: number }>;
  /** Messages (indexes) put back here. */
  readonly restore: number[];
}

/** The mailbox half of a rebuild plan. */
export interface MailboxesPlan {
  readonly mailboxes: MailboxPlan[];
  /** Final refcount of every placed message, by index. */
  readonly refcounts: Uint32Array;
}

/**
 * @param oldMapUidValidity the uid_validity of the map the snapshots' map
 *   uids refer to when it is still the map (undefined: it was recreated).
 * @param restoreTarget maps a `B` name to the mailbox to restore into (invalid names → INBOX).
 * @param expunged hex GUIDs a mailbox log shows expunged: not put back
 *   when the old map has no record of them.
 */
export function planMailboxes(
  index: MessageIndex,
  placed: PlacedMessages,
  snapshots: readonly MailboxSnapshot[],
  oldMapUidValidity: number | undefined,
  restoreTarget: (orig: string | undefined) => string,
  expunged: ReadonlySet<string> = new Set(),
): MailboxesPlan {
  const refcounts = new Uint32Array(placed.count);
  const plans = new Map<string, MailboxPlan>();
  for (const s of snapshots) {
    const trust = oldMapUidValidity !== undefined && s.header?.mapUidValidity === oldMapUidValidity;
    const plan: MailboxPlan = { name: s.name, snapshot: s, recreate: s.source !== "log", kept: [], restore: [] };
    for (const ref of s.messages) {
      const msg = index.match(ref, trust);
      if (msg < 0) continue;
      // A record read from dovecot.index or its backup (the log is gone) may be
      // older than its expunge: the map counting its message as deleted says so.
      // It stays expunged, as with Dovecot, whose rebuild does not read them.
      if (s.source !== "log" && placed.seenZero(msg)) continue;
      plan.kept.push({ ref, msg });
      refcounts[msg]++;
    }
    plans.set(s.name, plan);
  }
  // The target of each original mailbox once (few names, many messages); the last slot for none.
  const found = placed.found;
  const targets: Array<MailboxPlan | undefined> = new Array(found.mailboxNames.length + 1);
  // Canonical messages only (a duplicate is seenZero).
  for (let msg = 0; msg < placed.count; msg++) {
    // A message the map still counts (refcount > 0) goes back even if some log expunged its GUID:
    // a copy in another mailbox whose index is lost shares the GUID.
    if (refcounts[msg] > 0 || placed.seenZero(msg) || (placed.unmapped(msg) && expunged.size > 0 && expunged.has(found.guidHex(msg)))) continue;
    const orig = found.origMailboxes[msg];
    const slot = orig < 0 ? found.mailboxNames.length : orig;
    let plan = targets[slot];
    if (plan === undefined) {
      const name = restoreTarget(found.origMailbox(msg));
      plan = plans.get(name);
      if (plan === undefined) {
        plan = { name, snapshot: undefined, recreate: true, kept: [], restore: [] };
        plans.set(name, plan);
      }
      targets[slot] = plan;
    }
    plan.restore.push(msg);
    refcounts[msg] = 1;
  }
  return { mailboxes: [...plans.values()], refcounts };
}
