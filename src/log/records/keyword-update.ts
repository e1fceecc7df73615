import { bytesToString, pad4, stringToBytes } from "../bytes.js";
import type { LogRecordBody, UidRange } from "../types.js";
import { checkUidRanges, corrupt, defineHiddenView, rawPayload, readUidRanges, writeUidRanges, type PayloadSource, type RecordCodec } from "./context.js";

export type KeywordUpdate = Extract<LogRecordBody, { type: "keyword-update" }>;

/**
 * KEYWORD_UPDATE (0x400): struct mail_transaction_keyword_update
 * {modify_type u8 (0 add, 1 remove), pad u8, name_size u16} + name + pad4,
 * then {uid1, uid2}[]. One keyword per record.
 */
export const keywordUpdateCodec: RecordCodec<KeywordUpdate> = {
  decode(src) {
    const rangesStart = checkKeywordHeader(src);
    const nameStart = src.start + 4;
    const name = bytesToString(src.bytes, nameStart, nameStart + src.view.getUint16(src.start + 2, true));
    return { type: "keyword-update", modifyType: src.bytes[src.start] === 0 ? "add" : "remove", name, ranges: readUidRanges(src, rangesStart, "keyword-update") };
  },
  encode(body, out) {
    const from = out.length;
    const name = stringToBytes(body.name);
    out.u8(body.modifyType === "add" ? 0 : 1);
    out.u8(0);
    out.u16(name.length);
    out.raw(name);
    out.padFrom(from);
    writeUidRanges(body.ranges, out);
  },
};

/**
 * Checks a KEYWORD_UPDATE's fixed part and name as Dovecot's reader does;
 * returns where its uid ranges start. Throws LogCorruptedError.
 */
function checkKeywordHeader(src: PayloadSource): number {
  if (src.end - src.start < 4) throw corrupt(src, "keyword-update: truncated header");
  const modify = src.bytes[src.start];
  if (modify > 1) throw corrupt(src, `keyword-update: unknown modify type ${modify}`);
  const nameSize = src.view.getUint16(src.start + 2, true);
  if (nameSize === 0) throw corrupt(src, "keyword-update: empty keyword name");
  const rangesStart = src.start + pad4(4 + nameSize);
  if (rangesStart >= src.end) throw corrupt(src, "keyword-update: no UID ranges after the name");
  return rangesStart;
}

/** A keyword name as KeywordNameCache keeps it, with what a replay last learned of it. */
export interface KeywordName {
  readonly name: string;
  /**
   * The keyword list `index` was found in (a fold's ctx.keywords), and the
   * name's index there: the fold of a raw update reads it instead of looking
   * the name up again. Set by the fold (apply-keywords.ts), never here.
   */
  keywords: readonly string[] | undefined;
  index: number;
}

/**
 * Keyword names decoded, compared byte for byte with the next one (names are
 * latin1 here, one byte per character, as bytesToString reads them). A
 * small table with one place per hash of the name's length and last two
 * bytes: a log cycling through a few names ($Label1..$Label5) finds each at
 * once instead of comparing with every name kept (that walk was 40% of the
 * reused decode's own time in a replay profile). Names that share a place
 * replace each other: a miss decodes as before.
 */
export class KeywordNameCache {
  private readonly slots: (KeywordName | undefined)[] = new Array(KEYWORD_NAME_SLOTS).fill(undefined);

  /** The name in bytes[start..end) (end > start), decoded once and remembered, as the kept entry. */
  entry(bytes: Uint8Array, start: number, end: number): KeywordName {
    const length = end - start;
    const slot = (length * 31 + bytes[end - 1] * 7 + bytes[end - 2 < start ? start : end - 2]) & (KEYWORD_NAME_SLOTS - 1);
    const kept = this.slots[slot];
    if (kept !== undefined && kept.name.length === length) {
      const name = kept.name;
      let i = 0;
      while (i < length && name.charCodeAt(i) === bytes[start + i]) i++;
      if (i === length) return kept;
    }
    const entry: KeywordName = { name: bytesToString(bytes, start, end), keywords: undefined, index: -1 };
    this.slots[slot] = entry;
    return entry;
  }
}

/** Places in a KeywordNameCache (a power of two). */
const KEYWORD_NAME_SLOTS = 64;

/**
 * A KEYWORD_UPDATE left in the log's bytes, for a replay (a reusing scan's,
 * see scan-reuse.ts): checked as the codec's decode checks it, but
 * neither its name nor its ranges are turned into objects. The fold reads
 * the ranges from `view` (rangesStart to end, {uid1, uid2} pairs) and the
 * keyword's index from `nameEntry`, as Dovecot applies records on the
 * file's buffer. `name` and `ranges` are still there for any other reader,
 * decoded when asked, as own enumerable accessors so that a spread or
 * structuredClone keeps them; `view` (the whole log file's buffer) is not
 * enumerable, so they do not carry it. Overwritten by the next record the
 * scan checks into it: detachRecord (detach.ts) gives the plain record to
 * keep.
 */
export class RawKeywordUpdate {
  readonly type = "keyword-update" as const;
  external = false;
  sync = false;
  modifyType: "add" | "remove" = "add";
  /** File offsets (less the source's delta) of the uid ranges in `view`. */
  rangesStart = 0;
  rangesEnd = 0;
  nameEntry: KeywordName = { name: "", keywords: undefined, index: -1 };
  declare view: DataView;
  declare readonly name: string;
  declare readonly ranges: UidRange[];
  #decodedRanges: UidRange[] = [];
  #rangesOf: DataView | undefined;
  #rangesOfStart = -1;

  /** One getter each for every instance, so that all share one V8 map (see RawFlagUpdate). */
  static readonly #name: PropertyDescriptor = { enumerable: true, get(this: RawKeywordUpdate) { return this.nameEntry.name; } };
  static readonly #ranges: PropertyDescriptor = { enumerable: true, get(this: RawKeywordUpdate) { return this.#decodeRanges(); } };

  constructor() {
    defineHiddenView(this);
    // Only on an instance (not the prototype) is an accessor copied by a spread or structuredClone.
    Object.defineProperty(this, "name", RawKeywordUpdate.#name);
    Object.defineProperty(this, "ranges", RawKeywordUpdate.#ranges);
  }

  #decodeRanges(): UidRange[] {
    // Decoded once per record checked into this object (a fold reads the bytes and never asks).
    if (this.#rangesOf !== this.view || this.#rangesOfStart !== this.rangesStart) {
      this.#decodedRanges = readUidRanges(rawPayload(this.view, this.rangesStart, this.rangesEnd), this.rangesStart, "keyword-update");
      this.#rangesOf = this.view;
      this.#rangesOfStart = this.rangesStart;
    }
    return this.#decodedRanges;
  }
}

/**
 * Checks a KEYWORD_UPDATE payload as the codec's decode does (same
 * errors, same offsets) and points `target` at it. Returns `target`.
 */
export function checkKeywordUpdateInto(src: PayloadSource, target: RawKeywordUpdate, names: KeywordNameCache): RawKeywordUpdate {
  const rangesStart = checkKeywordHeader(src);
  checkUidRanges(src, rangesStart, "keyword-update");
  const nameStart = src.start + 4;
  target.modifyType = src.bytes[src.start] === 0 ? "add" : "remove";
  target.nameEntry = names.entry(src.bytes, nameStart, nameStart + src.view.getUint16(src.start + 2, true));
  target.view = src.view;
  target.rangesStart = rangesStart;
  target.rangesEnd = src.end;
  return target;
}
