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
import type { FoundMessage } from "./rebuild-scan.js";
import type { MailboxMessageRef, MailboxSnapshot } from "./mailbox-refs.js";
import type { MapEntry } from "../../projections/mdbox-map-view.js";

/** A found message with the map uid it will have. */
export interface PlacedMessage extends FoundMessage {
  readonly mapUid: number;
  /** The old map had it at refcount 0: it stays deleted when nothing points at it. */
  readonly seenZero: boolean;
  /** An earlier message has the same GUID. */
  readonly duplicate: boolean;
  /** The old map had no record of it (new, or left in a file a killed purge had replaced). */
  readonly unmapped: boolean;
}

/** The map half of a rebuild plan. */
export interface MapPlan {
  readonly placed: PlacedMessage[];
  /** Map uids whose record points at nothing found (or at a message another record took). */
  readonly expunge: number[];
  /** Found messages that get a new map record, in map uid order. */
  readonly append: PlacedMessage[];
}

/** Found messages by {file_id, offset}: numbers, not a string key per message (that cost ~60 ms at 20k). */
class Places<T> {
  private readonly byFile = new Map<number, Map<number, T>>();

  set(fileId: number, offset: number, value: T): void {
    let file = this.byFile.get(fileId);
    if (file === undefined) this.byFile.set(fileId, (file = new Map()));
    file.set(offset, value);
  }

  get(fileId: number, offset: number): T | undefined {
    return this.byFile.get(fileId)?.get(offset);
  }
}

/** @returns the map plan; new map uids start at `nextMapUid`. */
export function planMap(found: readonly FoundMessage[], entries: readonly MapEntry[], nextMapUid: number): MapPlan {
  // Messages are named by their index in `found`, with the map entry of each in a parallel
  // array: no slot object per message, which lived long enough to be copied by the GC (issue #11).
  const at = new Places<number>();
  for (let i = 0; i < found.length; i++) at.set(found[i].fileId, found[i].offset, i);
  const entryOf: Array<MapEntry | undefined> = new Array(found.length).fill(undefined);
  const expunge: number[] = [];
  for (const e of entries) {
    const i = at.get(e.fileId, e.offset);
    if (i === undefined || entryOf[i] !== undefined || found[i].size !== e.size) expunge.push(e.mapUid);
    else entryOf[i] = e;
  }
  // Of messages sharing a GUID, the first the map knows is the one kept: a purge killed
  // before its unlink leaves the old file, whose copies come first but are no longer mapped.
  const canonical = new Map<string, number>();
  for (let i = 0; i < found.length; i++) {
    const cur = canonical.get(found[i].guidKey);
    if (cur === undefined || (entryOf[cur] === undefined && entryOf[i] !== undefined)) canonical.set(found[i].guidKey, i);
  }
  const placed: PlacedMessage[] = [];
  const append: PlacedMessage[] = [];
  let next = nextMapUid;
  for (let i = 0; i < found.length; i++) {
    const m = found[i];
    const entry = entryOf[i];
    const duplicate = canonical.get(m.guidKey) !== i;
    // Field by field, not a spread of `m`: a spread per message cost more than the rest of the plan.
    const p: PlacedMessage = {
      fileId: m.fileId, alt: m.alt, offset: m.offset, size: m.size, guid: m.guid, guidKey: m.guidKey,
      guid128: m.guid128, receivedTime: m.receivedTime, origMailbox: m.origMailbox,
      mapUid: entry?.mapUid ?? next++,
      seenZero: duplicate || entry?.refcount === 0,
      duplicate,
      unmapped: entry === undefined,
    };
    placed.push(p);
    if (entry === undefined) append.push(p);
  }
  append.sort((a, b) => a.mapUid - b.mapUid);
  return { placed, expunge, append };
}

/** Lookup tables for matching mailbox records to placed messages. */
export class MessageIndex {
  private readonly byGuid = new Map<string, PlacedMessage>();
  private readonly byMapUid = new Map<number, PlacedMessage>();

  constructor(placed: readonly PlacedMessage[]) {
    for (const p of placed) {
      if (!p.duplicate) this.byGuid.set(p.guidKey, p);
      this.byMapUid.set(p.mapUid, p);
    }
  }

  /** Canonical messages (first of each GUID). */
  canonical(): PlacedMessage[] {
    return [...this.byGuid.values()];
  }

  /**
   * The message a mailbox record stands for: by GUID, else by map uid when
   * `trustMapUid` (the mailbox header names the map those uids are from).
   */
  match(ref: MailboxMessageRef, trustMapUid: boolean): PlacedMessage | undefined {
    if (ref.guid128.some((b) => b !== 0)) {
      const byGuid = this.byGuid.get(Buffer.from(ref.guid128).toString("hex"));
      if (byGuid !== undefined) return byGuid;
    }
    if (!trustMapUid || ref.mapUid === 0) return undefined;
    const m = this.byMapUid.get(ref.mapUid);
    return m === undefined ? undefined : this.byGuid.get(m.guidKey);
  }
}

/** One mailbox's part of the plan. */
export interface MailboxPlan {
  readonly name: string;
  /** Undefined for a mailbox that only exists to take restored messages. */
  readonly snapshot: MailboxSnapshot | undefined;
  /** The mailbox log is unreadable or missing: write a new one. */
  readonly recreate: boolean;
  /** Records that point at a found message (for a recreated mailbox: the ones to re-add). */
  readonly kept: Array<{ ref: MailboxMessageRef; msg: PlacedMessage }>;
  /** Messages put back here. */
  readonly restore: PlacedMessage[];
}

/** The mailbox half of a rebuild plan. */
export interface MailboxesPlan {
  readonly mailboxes: MailboxPlan[];
  /** Final refcount of every placed map uid. */
  readonly refcounts: Map<number, number>;
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
  placed: readonly PlacedMessage[],
  snapshots: readonly MailboxSnapshot[],
  oldMapUidValidity: number | undefined,
  restoreTarget: (orig: string | undefined) => string,
  expunged: ReadonlySet<string> = new Set(),
): MailboxesPlan {
  const refcounts = new Map<number, number>(placed.map((p) => [p.mapUid, 0]));
  const plans = new Map<string, MailboxPlan>();
  for (const s of snapshots) {
    const trust = oldMapUidValidity !== undefined && s.header?.mapUidValidity === oldMapUidValidity;
    const plan: MailboxPlan = { name: s.name, snapshot: s, recreate: s.source !== "log", kept: [], restore: [] };
    for (const ref of s.messages) {
      const msg = index.match(ref, trust);
      if (msg === undefined) continue;
      // A record read from dovecot.index or its backup (the log is gone) may be
      // older than its expunge: the map counting its message as deleted says so.
      // It stays expunged, as with Dovecot, whose rebuild does not read them.
      if (s.source !== "log" && msg.seenZero) continue;
      plan.kept.push({ ref, msg });
      refcounts.set(msg.mapUid, refcounts.get(msg.mapUid)! + 1);
    }
    plans.set(s.name, plan);
  }
  for (const msg of index.canonical()) {
    // A message the map still counts (refcount > 0) goes back even if some log expunged its GUID:
    // a copy in another mailbox whose index is lost shares the GUID.
    if (refcounts.get(msg.mapUid)! > 0 || msg.seenZero || (msg.unmapped && expunged.has(msg.guidKey))) continue;
    const name = restoreTarget(msg.origMailbox);
    let plan = plans.get(name);
    if (plan === undefined) {
      plan = { name, snapshot: undefined, recreate: true, kept: [], restore: [] };
      plans.set(name, plan);
    }
    plan.restore.push(msg);
    refcounts.set(msg.mapUid, 1);
  }
  return { mailboxes: [...plans.values()], refcounts };
}
