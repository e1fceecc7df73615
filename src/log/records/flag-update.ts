import type { FlagUpdate, LogRecordBody } from "../types.js";
import { assertUidRanges, corrupt, defineHiddenView, isValidUidRange, rawPayload, requireMultiple, type PayloadSource, type RecordCodec } from "./context.js";

export type FlagUpdateBody = Extract<LogRecordBody, { type: "flag-update" }>;

/**
 * FLAG_UPDATE (0x4): struct mail_transaction_flag_update
 * {uid1 u32, uid2 u32, add_flags u8, remove_flags u8, modseq_inc_flag u8, pad u8}[].
 */
export const flagUpdateCodec: RecordCodec<FlagUpdateBody> = {
  decode: decodeFlagUpdate,
  encode(body, out) {
    assertUidRanges(body.updates, "flag-update");
    for (const u of body.updates) {
      out.u32(u.uid1);
      out.u32(u.uid2);
      out.u8(u.addFlags);
      out.u8(u.removeFlags);
      out.u8(u.modseqIncFlag);
      out.u8(0);
    }
  },
};

/** Decodes a FLAG_UPDATE payload. Throws LogCorruptedError for a payload Dovecot would reject (checkFlagUpdate). */
function decodeFlagUpdate(src: PayloadSource): FlagUpdateBody {
  checkFlagUpdate(src);
  // Sized up front, as a fresh decode always was.
  const updates = new Array<FlagUpdate>((src.end - src.start) / 12);
  for (let i = 0, p = src.start; p < src.end; i++, p += 12) {
    updates[i] = { uid1: src.view.getUint32(p, true), uid2: src.view.getUint32(p + 4, true), addFlags: src.bytes[p + 8], removeFlags: src.bytes[p + 9], modseqIncFlag: src.bytes[p + 10] };
  }
  return { type: "flag-update", updates };
}

/**
 * Checks a FLAG_UPDATE payload as Dovecot's reader does (whole entries,
 * valid ascending uid ranges). Returns whether any update is not internal
 * (isInternalFlagUpdate): whether the record moves the modseq. Throws
 * LogCorruptedError.
 */
function checkFlagUpdate(src: PayloadSource): boolean {
  const count = requireMultiple(src, 12, "flag-update");
  let prev = 0;
  let visible = false;
  for (let i = 0, p = src.start; i < count; i++, p += 12) {
    const uid1 = src.view.getUint32(p, true);
    const uid2 = src.view.getUint32(p + 4, true);
    if (!isValidUidRange(uid1, uid2, prev)) {
      throw corrupt(src, `flag-update: invalid UID range ${uid1}..${uid2}`, p);
    }
    prev = uid2;
    visible ||= !isInternalFlagChange(src.bytes[p + 8], src.bytes[p + 9], src.bytes[p + 10]);
  }
  return visible;
}

/**
 * A FLAG_UPDATE left in the log's bytes, for a replay (a reusing scan's, see
 * scan-reuse.ts): checked as decodeFlagUpdate checks it, its updates not
 * turned into objects. The fold reads them from `view` (start to end, 12
 * bytes each: uid1 u32, uid2 u32, add_flags, remove_flags, modseq_inc_flag,
 * pad), as Dovecot applies records on the file's buffer. `updates` is still
 * there for any other reader, decoded when asked, as an own enumerable
 * accessor so that a spread or structuredClone keeps it; `view` (the whole
 * log file's buffer) is not enumerable, so they do not carry it. Overwritten
 * by the next record the scan checks into it: detachRecord (detach.ts)
 * gives the plain record to keep.
 */
export class RawFlagUpdate {
  readonly type = "flag-update" as const;
  external = false;
  sync = false;
  /** Offsets in `view` of the first update and just past the last. */
  start = 0;
  end = 0;
  /** Whether an update is not internal: the record moves the modseq (nextModseq). */
  movesModseq = false;
  declare view: DataView;
  declare readonly updates: FlagUpdate[];
  #decoded: FlagUpdate[] = [];
  #decodedOf: DataView | undefined;
  #decodedStart = -1;

  /**
   * One getter for every instance: with a closure each, every instance had
   * its own V8 map, and the fold's reads of `view`, `start` and `end` went
   * polymorphic over a transaction's records.
   */
  static readonly #updates: PropertyDescriptor = { enumerable: true, get(this: RawFlagUpdate) { return this.#decode(); } };

  constructor() {
    defineHiddenView(this);
    // Only on an instance (not the prototype) is an accessor copied by a spread or structuredClone.
    Object.defineProperty(this, "updates", RawFlagUpdate.#updates);
  }

  #decode(): FlagUpdate[] {
    // Decoded once per record checked into this object (a fold reads the bytes and never asks).
    if (this.#decodedOf !== this.view || this.#decodedStart !== this.start) {
      this.#decoded = decodeFlagUpdate(rawPayload(this.view, this.start, this.end)).updates;
      this.#decodedOf = this.view;
      this.#decodedStart = this.start;
    }
    return this.#decoded;
  }
}

/** Checks a FLAG_UPDATE payload as decodeFlagUpdate does (same errors, same offsets) and points `target` at it. Returns `target`. */
export function checkFlagUpdateInto(src: PayloadSource, target: RawFlagUpdate): RawFlagUpdate {
  target.movesModseq = checkFlagUpdate(src);
  target.view = src.view;
  target.start = src.start;
  target.end = src.end;
  return target;
}

/** True when the update touches no IMAP-visible flag and forces no modseq bump. */
export function isInternalFlagUpdate(u: FlagUpdate): boolean {
  return isInternalFlagChange(u.addFlags, u.removeFlags, u.modseqIncFlag);
}

/** isInternalFlagUpdate over an update's three bytes (a raw record's check reads them from the log). */
function isInternalFlagChange(addFlags: number, removeFlags: number, modseqIncFlag: number): boolean {
  return ((addFlags | removeFlags) & 0x1f) === 0 && modseqIncFlag === 0;
}
