/**
 * One stream message per published commit: the exact dovecot.index.log
 * bytes of the range it covers (per log file, with the file's header), the
 * mailbox it belongs to, and the bodies its appends saved. msgpackr encodes
 * it (the design's encoding for events crossing a process boundary).
 * Modseqs travel as decimal strings: they are 64-bit.
 */
import { Packr } from "msgpackr";
import type { LogPosition } from "../log/types.js";
import type { LogSegment } from "../log/segments.js";
import { ReplicationError } from "../shared/errors.js";

export const WIRE_VERSION = 1;

/** A body saved by the commit: inline, or in the object store under its message GUID. */
export interface ShippedBody {
  uid: number;
  guid: string;
  receivedTime: number;
  /** The stored bytes, when small enough to travel in the stream message. */
  body?: Uint8Array;
  /** Object-store name of the body (its GUID) when it does not. */
  objectName?: string;
  sizeBytes: number;
  /** Expunged before it was shipped (the range expunges it too): `body` is an empty placeholder. */
  expunged?: boolean;
}

/**
 * A mailbox create, rename or delete, carried by a message with no log bytes
 * on the mailbox's own subject (its `mailbox` is the name after a rename).
 */
export type MailboxOp = { type: "create" } | { type: "rename"; from: string } | { type: "delete" };

/**
 * Exact bytes a writer appended to a storage-wide log (the mdbox map's
 * `storage/dovecot.map.index.log`): its range and segments, read as a
 * commit's own are from the mailbox's log.
 */
export interface ShippedLogRange {
  log: "map";
  start: LogPosition;
  end: LogPosition;
  segments: LogSegment[];
}

/** One message of a seed: what the primary's index holds of it at the seed's position. */
export interface SeededMessage {
  uid: number;
  /** System flags (MailFlag bits, Dovecot's MAIL_INDEX_FLAGS_MASK). */
  flags: number;
  keywords: string[];
}

/** A seeded message's modseq in the primary's index. */
export interface SeededModseq {
  uid: number;
  modseq: bigint;
}

/**
 * A mailbox's state at one log position, for a subject whose replicas
 * cannot get it from the log (history rotated away before replication
 * started). Shipped in parts, each a stream message of its own (the
 * message size limit); only the last one moves the subject's cursor.
 * The bodies travel in the message's `bodies`, as a commit's do.
 */
export interface ShippedSeed {
  /** 0, 1, …: parts of one seed are consecutive messages of the subject. */
  part: number;
  last: boolean;
  /** The primary's next UID at the seed's position. */
  nextUid: number;
  /** The primary's keyword names in its index's order (a message's keywords are bits in that order). */
  keywords: string[];
  /** Whether the primary's index keeps a modseq per message (modseqs enabled); when not, they read as the highest, and no part has `modseqs`. */
  tracksModseqs: boolean;
  messages: SeededMessage[];
  /**
   * The messages' modseqs, in parts after every message part: a
   * MODSEQ_UPDATE raises the log's counter to its highest modseq as well,
   * so the replica counts all its appends first (see apply.ts applySeed).
   */
  modseqs: SeededModseq[];
}

export interface ShippedCommit {
  version: number;
  storageId: string;
  mailboxGuid: string;
  /** Mailbox name, "/"-separated. */
  mailbox: string;
  uidValidity: number;
  /** The writing mailbox's own GUID: whose log `start` and `end` are positions of (a promoted replica's differs from `mailboxGuid`). */
  writerGuid: string;
  /** The range of the primary's log this message carries. */
  start: LogPosition;
  end: LogPosition;
  /** The primary log's modseq at `end`. */
  modseq: bigint;
  segments: LogSegment[];
  bodies: ShippedBody[];
  /**
   * Set on a create, rename or delete message: it carries no log bytes. A
   * rename's or delete's `start`, `end` and `modseq` are those of the
   * subject's previous message; a create's are the new log's end (its
   * creation records are not shipped: the replica creates the mailbox with
   * `uidValidity` itself). Either way, the position the next commit
   * continues from. Absent in commits and takeover messages; a replica of an
   * older version reads it as an empty commit (which creates the mailbox).
   */
  op?: MailboxOp;
  /**
   * mdbox: the map records this commit wrote (refcounts of its saves,
   * copies and expunges), in the same message as the mailbox records that
   * caused them: one publish under one expected sequence, so a fenced or
   * killed writer never ships one half. Information only for replicas
   * (their map is their own); absent when the commit left the map alone,
   * and in `local` mode (the outbox reads the mailbox log alone).
   */
  mapLog?: ShippedLogRange[];
  /**
   * Set on a seed part: no log bytes; `start` and `end` are the seed's
   * position E and `modseq` the primary log's modseq there, where the
   * commits after the seed continue from.
   */
  seed?: ShippedSeed;
}

/**
 * A change of the storage as a whole, on a subject of its own: a purge or
 * an altmove (`<prefix>.<storage-id>._storage`), the subscriptions
 * (`<prefix>.<storage-id>._subscriptions`), or the takeover of either
 * subject by a promoted store.
 */
export type StorageOp =
  | { type: "purge" }
  | { type: "altmove"; mailboxGuid: string; mailbox: string; uidValidity: number; uids: number[]; toAlt: boolean }
  /**
   * The subscribed names after a subscribe or unsubscribe ("/"-separated,
   * INBOX upper case, in the primary file's order): the whole list, not the
   * one change, so that applying it twice, or after a later one, or only
   * the last of many (a seed, a local-mode drain that coalesced changes)
   * ends with the primary's list.
   */
  | { type: "subscriptions"; names: string[] }
  | { type: "takeover" };

export interface ShippedStorageEvent {
  version: number;
  kind: "storage";
  storageId: string;
  /** The writing store's identity: its INBOX's own GUID (what fences another store's writer on this subject). */
  writerGuid: string;
  /** Unique per event: how a writer recognises its own publish stored after a timeout. */
  eventId: string;
  op: StorageOp;
  /** What the change appended to the map log, in order (empty: nothing, or not mdbox). */
  mapLog: ShippedLogRange[];
}

const packr = new Packr({ useRecords: false });

interface WireSegment extends Omit<LogSegment, "modseqAtFrom"> {
  modseqAtFrom: string;
}

function encodeSegments(segments: readonly LogSegment[]): WireSegment[] {
  return segments.map((s) => ({ ...s, modseqAtFrom: s.modseqAtFrom.toString() }));
}

function decodeSegments(segments: readonly WireSegment[]): LogSegment[] {
  return segments.map((s) => ({ ...s, headerBytes: new Uint8Array(s.headerBytes), bytes: new Uint8Array(s.bytes), modseqAtFrom: BigInt(s.modseqAtFrom) }));
}

function encodeRanges(ranges: readonly ShippedLogRange[]): unknown[] {
  return ranges.map((r) => ({ ...r, segments: encodeSegments(r.segments) }));
}

function decodeRanges(ranges: unknown): ShippedLogRange[] {
  return ((ranges ?? []) as Array<ShippedLogRange & { segments: WireSegment[] }>).map((r) => ({ ...r, segments: decodeSegments(r.segments) }));
}

export function encodeCommit(c: ShippedCommit): Uint8Array {
  return packr.pack({
    ...c,
    modseq: c.modseq.toString(),
    segments: encodeSegments(c.segments),
    ...(c.seed ? { seed: { ...c.seed, modseqs: c.seed.modseqs.map((m) => ({ ...m, modseq: m.modseq.toString() })) } } : {}),
    ...(c.mapLog ? { mapLog: encodeRanges(c.mapLog) } : {}),
  });
}

export function encodeStorageEvent(e: ShippedStorageEvent): Uint8Array {
  return packr.pack({ ...e, mapLog: encodeRanges(e.mapLog) });
}

/** msgpackr's map of a stream message, of this wire version. @throws ReplicationError otherwise. */
function unpackMessage(bytes: Uint8Array, subject: string, seq: number, what: string): Record<string, unknown> {
  let raw: Record<string, unknown>;
  try {
    raw = packr.unpack(bytes) as Record<string, unknown>;
  } catch (err) {
    throw new ReplicationError(`stream message ${seq} is not a mailstore ${what}: ${(err as Error).message}`, { path: subject });
  }
  if (raw?.version !== WIRE_VERSION) throw new ReplicationError(`stream message ${seq} has wire version ${String(raw?.version)}, not ${WIRE_VERSION}`, { path: subject });
  return raw;
}

/** @throws ReplicationError for a message this version cannot read. */
export function decodeStorageEvent(bytes: Uint8Array, subject: string, seq: number): ShippedStorageEvent {
  const raw = unpackMessage(bytes, subject, seq, "storage event");
  if (raw.kind !== "storage") throw new ReplicationError(`stream message ${seq} is not a storage event`, { path: subject });
  return { ...(raw as unknown as ShippedStorageEvent), mapLog: decodeRanges(raw.mapLog) };
}

/** @throws ReplicationError for a message this version cannot read. */
export function decodeCommit(bytes: Uint8Array, subject: string, seq: number): ShippedCommit {
  const raw = unpackMessage(bytes, subject, seq, "commit");
  // A storage event (or a kind a later version adds) on a subject this version takes for a mailbox's.
  if (raw.kind !== undefined || !Array.isArray(raw.segments) || !Array.isArray(raw.bodies)) {
    throw new ReplicationError(`stream message ${seq} is not a mailbox commit this version can read (kind ${String(raw.kind ?? "commit")}): is the writer a newer mailstore?`, { path: subject });
  }
  const segments = decodeSegments(raw.segments as WireSegment[]);
  // msgpackr gives Buffers in Node: plain Uint8Array views of the same bytes.
  const bodies = (raw.bodies as ShippedBody[]).map((b) => (b.body ? { ...b, body: new Uint8Array(b.body.buffer, b.body.byteOffset, b.body.byteLength) } : b));
  const seed = raw.seed as (Omit<ShippedSeed, "modseqs"> & { modseqs: Array<{ uid: number; modseq: string }> }) | undefined;
  return {
    ...(raw as unknown as ShippedCommit), modseq: BigInt(raw.modseq as string), segments, bodies,
    ...(raw.mapLog ? { mapLog: decodeRanges(raw.mapLog) } : {}),
    ...(seed ? { seed: { ...seed, modseqs: seed.modseqs.map((m) => ({ ...m, modseq: BigInt(m.modseq) })) } } : {}),
  };
}
