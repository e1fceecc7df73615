/**
 * Maildir file names (maildir-mbox.md A2):
 *
 *     <base>[,S=<size>][,W=<vsize>][:2,<flag letters>[,<more>]]
 *
 * - The base name (uidlist key, default GUID) is everything before the FIRST `:`.
 * - The info part starts at the LAST `:`; only `2,` info carries flags, and the
 *   letters end at the end or at the next `,` (a further flag set Dovecot keeps).
 * - `,S=` / `,W=`: the first occurrence anywhere in the name, digits up to `,`,
 *   `:` or the end; anything else means "no size".
 * - Letters D F R S T are system flags, `a`..`z` keyword 0..25 of
 *   dovecot-keywords, anything else (e.g. `P` "passed") is kept as is.
 *
 * When flags change Dovecot always writes `:2,` (even with no letters left —
 * observed: `…,W=33:2,`), places D F R S T and the keyword block at their ASCII
 * position among the letters it does not know, and drops info of any other
 * version.
 */
import { MailFlag } from "../../log/types.js";
import { InvalidArgumentError } from "../../shared/errors.js";

/** Maildir letter of each system flag, in ASCII order. */
export const MAILDIR_FLAG_LETTERS: ReadonlyArray<readonly [letter: string, flag: number]> = [
  ["D", MailFlag.DRAFT],
  ["F", MailFlag.FLAGGED],
  ["R", MailFlag.ANSWERED],
  ["S", MailFlag.SEEN],
  ["T", MailFlag.DELETED],
];
/** Keywords representable in a file name (`a`..`z`). */
export const MAILDIR_MAX_KEYWORDS = 26;

const FLAG_OF_LETTER = new Map(MAILDIR_FLAG_LETTERS);
const SYSTEM_FLAGS = MailFlag.ANSWERED | MailFlag.FLAGGED | MailFlag.DELETED | MailFlag.SEEN | MailFlag.DRAFT;

export interface MaildirFileName {
  /** Everything before the first `:`. */
  readonly baseName: string;
  /** `,S=` physical size, when present and well formed. */
  readonly size?: number;
  /** `,W=` virtual size (LFs counted as CRLF), when present and well formed. */
  readonly vsize?: number;
  /** The raw text after the last `:`, or undefined without a `:`. */
  readonly info?: string;
  /** System flags (MailFlag bits) of a `2,` info. */
  readonly flags: number;
  /** Keyword indexes (0..25) in the order their letters appear. */
  readonly keywordIndexes: readonly number[];
  /** Letters of a `2,` info that are neither flags nor keywords, in order. */
  readonly otherLetters: string;
}

function isKeywordLetter(c: string): boolean {
  return c >= "a" && c <= "z";
}

/**
 * @returns the value of the first `,<type>=` field in `name`, or undefined
 *   when missing or not followed by digits ending at `,`, `:` or the end.
 */
export function maildirFileNameSize(name: string, type: "S" | "W"): number | undefined {
  const at = name.indexOf(`,${type}=`);
  if (at < 0) return undefined;
  let i = at + 3;
  let value = 0;
  while (i < name.length && name[i] >= "0" && name[i] <= "9") {
    value = value * 10 + (name.charCodeAt(i) - 48);
    i++;
  }
  if (i < name.length && name[i] !== "," && name[i] !== ":") return undefined;
  return value;
}

/** @returns the base name: everything before the first `:`. */
export function maildirBaseName(name: string): string {
  const colon = name.indexOf(":");
  return colon < 0 ? name : name.slice(0, colon);
}

/** @returns the letters of a `2,` info (up to the next `,`), or undefined for other info. */
function flagLetters(info: string | undefined): string | undefined {
  if (info === undefined || !info.startsWith("2,")) return undefined;
  const letters = info.slice(2);
  const comma = letters.indexOf(",");
  return comma < 0 ? letters : letters.slice(0, comma);
}

/** @returns the parts of a Maildir file name (any string is accepted). */
export function parseMaildirFileName(name: string): MaildirFileName {
  const lastColon = name.lastIndexOf(":");
  const info = lastColon < 0 ? undefined : name.slice(lastColon + 1);
  let flags = 0;
  const keywordIndexes: number[] = [];
  let otherLetters = "";
  for (const c of flagLetters(info) ?? "") {
    const flag = FLAG_OF_LETTER.get(c);
    if (flag !== undefined) flags |= flag;
    else if (isKeywordLetter(c)) keywordIndexes.push(c.charCodeAt(0) - 97);
    else otherLetters += c;
  }
  const result: { -readonly [K in keyof MaildirFileName]: MaildirFileName[K] } = {
    baseName: maildirBaseName(name),
    flags,
    keywordIndexes,
    otherLetters,
  };
  const size = maildirFileNameSize(name, "S");
  const vsize = maildirFileNameSize(name, "W");
  if (size !== undefined) result.size = size;
  if (vsize !== undefined) result.vsize = vsize;
  if (info !== undefined) result.info = info;
  return result;
}

/** @returns the letter of keyword index `idx`. @throws InvalidArgumentError outside 0..25. */
export function maildirKeywordLetter(idx: number): string {
  if (!Number.isInteger(idx) || idx < 0 || idx >= MAILDIR_MAX_KEYWORDS) {
    throw new InvalidArgumentError(`maildir keyword index ${idx} is not in 0..25`);
  }
  return String.fromCharCode(97 + idx);
}

/**
 * @returns the flag letters Dovecot writes for `flags` and `keywordIndexes`,
 *   merged with the letters it does not know (`otherLetters`, order kept):
 *   each known letter goes before the first unknown letter that sorts after it.
 */
export function maildirFlagLetters(flags: number, keywordIndexes: Iterable<number> = [], otherLetters = ""): string {
  // Pending known items, ascending: system flag letters, then the keyword block.
  const pending: Array<[key: string, text: string]> = MAILDIR_FLAG_LETTERS.filter(([, bit]) => (flags & bit) !== 0).map(([l]) => [l, l]);
  const kw = [...new Set([...keywordIndexes].map(maildirKeywordLetter))].sort().join("");
  if (kw !== "") pending.push(["a", kw]);
  let out = "";
  let next = 0;
  for (const c of otherLetters) {
    while (next < pending.length && pending[next][0] < c) out += pending[next++][1];
    out += c;
  }
  while (next < pending.length) out += pending[next++][1];
  return out;
}

/**
 * Rewrites the flags of an existing file name the way Dovecot renames a file
 * on a flag change: the info after the last `:` is replaced by `2,<letters>`
 * keeping unknown letters and any `,<further flag set>`; keyword letters not
 * in `keywordIndexes` are dropped.
 * @returns the new file name (always with `:2,`).
 * @throws InvalidArgumentError for keyword indexes outside 0..25.
 */
export function setMaildirFileNameFlags(name: string, flags: number, keywordIndexes: Iterable<number> = []): string {
  const lastColon = name.lastIndexOf(":");
  const prefix = lastColon < 0 ? name : name.slice(0, lastColon);
  const info = lastColon < 0 ? undefined : name.slice(lastColon + 1);
  let old = "";
  let rest = "";
  if (info !== undefined && info.startsWith("2,")) {
    const letters = info.slice(2);
    const comma = letters.indexOf(",");
    old = comma < 0 ? letters : letters.slice(0, comma);
    rest = comma < 0 ? "" : letters.slice(comma);
  }
  const unknown = [...old].filter((c) => !FLAG_OF_LETTER.has(c) && !isKeywordLetter(c)).join("");
  return `${prefix}:2,${maildirFlagLetters(flags & SYSTEM_FLAGS, keywordIndexes, unknown)}${rest}`;
}

export interface NewMaildirFileName {
  readonly baseName: string;
  /** Physical size, written as `,S=`. */
  readonly size?: number;
  /** Virtual size, written as `,W=`. */
  readonly vsize?: number;
  readonly flags?: number;
  readonly keywordIndexes?: Iterable<number>;
}

/**
 * @returns the name Dovecot gives a saved message: `<base>,S=..,W=..` and,
 *   only when it has flags or keywords, `:2,<letters>` (such a file goes to
 *   cur/, one without to new/).
 * @throws InvalidArgumentError when the base name contains `/` or `:` or a
 *   keyword index is outside 0..25.
 */
export function formatMaildirFileName(parts: NewMaildirFileName): string {
  if (/[/:]/.test(parts.baseName) || parts.baseName === "") {
    throw new InvalidArgumentError(`invalid maildir base name "${parts.baseName}"`);
  }
  let name = parts.baseName;
  if (parts.size !== undefined) name += `,S=${parts.size}`;
  if (parts.vsize !== undefined) name += `,W=${parts.vsize}`;
  const letters = maildirFlagLetters((parts.flags ?? 0) & SYSTEM_FLAGS, parts.keywordIndexes ?? []);
  return letters === "" ? name : `${name}:2,${letters}`;
}

function leadingSecs(name: string): { secs: number; end: number } {
  let i = 0;
  let secs = 0;
  while (i < name.length && name[i] >= "0" && name[i] <= "9") {
    secs = secs * 10 + (name.charCodeAt(i) - 48);
    i++;
  }
  return { secs, end: i };
}

/** The digits after the first `M` of the dot-separated part after the seconds. */
function usecsAfter(name: string, from: number): number | undefined {
  if (name[from] !== ".") return undefined;
  for (let i = from + 1; i < name.length && name[i] !== "." && name[i] !== ":"; i++) {
    if (name[i] === "M") {
      let j = i + 1;
      let usecs = 0;
      while (j < name.length && name[j] >= "0" && name[j] <= "9") {
        usecs = usecs * 10 + (name.charCodeAt(j) - 48);
        j++;
      }
      return usecs;
    }
  }
  return undefined;
}

function compareBase(a: string, b: string): number {
  const x = maildirBaseName(a);
  const y = maildirBaseName(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Orders file names the way Dovecot assigns UIDs to new mail: by the leading
 * seconds, then the `M<usecs>` of the unique part when both have one, then by
 * base name.
 * @returns negative, zero or positive.
 */
export function compareMaildirFileNames(a: string, b: string): number {
  const sa = leadingSecs(a);
  const sb = leadingSecs(b);
  if (sa.secs !== sb.secs) return sa.secs - sb.secs;
  const ua = usecsAfter(a, sa.end);
  const ub = usecsAfter(b, sb.end);
  if (ua !== undefined && ub !== undefined && ua !== ub) return ua - ub;
  return compareBase(a.slice(sa.end), b.slice(sb.end));
}

/**
 * The system flags of a name's `2,` info without building a parse result
 * (a sync compares 100k names): -1 when the info also has keyword letters,
 * which need {@link parseMaildirFileName}.
 */
export function quickMaildirFlags(name: string): number {
  const colon = name.lastIndexOf(":");
  if (colon < 0 || name.charCodeAt(colon + 1) !== 50 /* 2 */ || name.charCodeAt(colon + 2) !== 44 /* , */) return 0;
  let flags = 0;
  for (let i = colon + 3; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 44) break;
    if (c >= 97 && c <= 122) return -1;
    const flag = QUICK_FLAG[c];
    if (flag !== undefined) flags |= flag;
  }
  return flags;
}

const QUICK_FLAG: Record<number, number> = Object.fromEntries(MAILDIR_FLAG_LETTERS.map(([letter, bit]) => [letter.charCodeAt(0), bit]));
