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
}

const packr = new Packr({ useRecords: false });

interface WireSegment extends Omit<LogSegment, "modseqAtFrom"> {
  modseqAtFrom: string;
}

export function encodeCommit(c: ShippedCommit): Uint8Array {
  return packr.pack({
    ...c,
    modseq: c.modseq.toString(),
    segments: c.segments.map((s): WireSegment => ({ ...s, modseqAtFrom: s.modseqAtFrom.toString() })),
  });
}

/** @throws ReplicationError for a message this version cannot read. */
export function decodeCommit(bytes: Uint8Array, subject: string, seq: number): ShippedCommit {
  let raw: Record<string, unknown>;
  try {
    raw = packr.unpack(bytes) as Record<string, unknown>;
  } catch (err) {
    throw new ReplicationError(`stream message ${seq} is not a mailstore commit: ${(err as Error).message}`, { path: subject });
  }
  if (raw?.version !== WIRE_VERSION) throw new ReplicationError(`stream message ${seq} has wire version ${String(raw?.version)}, not ${WIRE_VERSION}`, { path: subject });
  const segments = (raw.segments as WireSegment[]).map((s) => ({
    ...s, headerBytes: new Uint8Array(s.headerBytes), bytes: new Uint8Array(s.bytes), modseqAtFrom: BigInt(s.modseqAtFrom),
  }));
  // msgpackr gives Buffers in Node: plain Uint8Array views of the same bytes.
  const bodies = (raw.bodies as ShippedBody[]).map((b) => (b.body ? { ...b, body: new Uint8Array(b.body.buffer, b.body.byteOffset, b.body.byteLength) } : b));
  return { ...(raw as unknown as ShippedCommit), modseq: BigInt(raw.modseq as string), segments, bodies };
}
