/**
 * Dovecot `mail_location` strings (doveadm-oracle.md §4):
 *
 *     [<driver>:]<root>[:<KEY>=<value>|:<FLAG>]…
 *
 * Facts checked with doveadm 2.3.19:
 * - The driver is the text before the first `:` when it contains no `/`
 *   (`/srv/mail:INDEX=/i` has none and is autodetected); its case is ignored
 *   (`MAILDIR:` works). Unknown drivers are an error.
 * - `::` stands for one `:` inside the root or a value; a trailing `:` is
 *   ignored. Keys are case-sensitive (`layout=fs` is "Unknown setting").
 * - Every path loses one trailing `/`; `INDEX=` and `INDEX=MEMORY` both mean
 *   in-memory indexes (`INDEX=memory` is a relative path).
 * - `UTF-8` takes no value (`UTF-8=yes` is "Unknown setting"); `ALTNOCHECK`,
 *   `ITERINDEX` and `NO-NOSELECT` are flags; `ITERINDEX` needs a non-empty
 *   `INDEX`; `BROKENCHAR` must be one character.
 * - `~` and `~/…` are expanded with the user's home ({@link expandLocationHome}).
 */
import { InvalidArgumentError } from "../shared/errors.js";

/** Storage drivers doveadm 2.3.19 knows (`dbox` is an alias of `sdbox`). */
export const MAIL_DRIVERS = ["maildir", "mbox", "sdbox", "dbox", "mdbox", "imapc", "pop3c", "raw", "shared", "fail"] as const;
export type MailDriver = (typeof MAIL_DRIVERS)[number];

/** A parsed mail_location. Absent fields were not given. */
export interface MailLocation {
  /** Lower-case driver; undefined when the format must be autodetected. */
  readonly driver?: MailDriver;
  /** Mail root directory (for driverless mbox locations possibly a file). */
  readonly root: string;
  /** `INBOX=`: the INBOX path (mbox: the INBOX file). */
  readonly inbox?: string;
  /** `INDEX=`: index directory; "" means in-memory indexes (`INDEX=MEMORY`). */
  readonly index?: string;
  readonly indexPvt?: string;
  readonly indexCache?: string;
  readonly control?: string;
  readonly alt?: string;
  readonly altNoCheck?: boolean;
  /** `LAYOUT=`: `maildir++` (Maildir default), `fs` (dbox/mbox default), `index`. */
  readonly layout?: string;
  readonly subscriptions?: string;
  /** `DIRNAME=` (or `FULLDIRNAME=` when {@link fullDirName}). */
  readonly dirName?: string;
  readonly fullDirName?: boolean;
  readonly mailboxDir?: string;
  readonly volatileDir?: string;
  readonly listIndex?: string;
  readonly iterIndex?: boolean;
  readonly noNoselect?: boolean;
  /** `UTF-8`: mailbox names on disk are UTF-8 instead of modified UTF-7. */
  readonly utf8?: boolean;
  readonly brokenChar?: string;
}

type PathKey = "inbox" | "index" | "indexPvt" | "indexCache" | "control" | "alt" | "layout" | "subscriptions" | "dirName" | "mailboxDir" | "volatileDir" | "listIndex";
type FlagKey = "altNoCheck" | "iterIndex" | "noNoselect";

/** KEY=value settings in the order {@link formatMailLocation} writes them. */
const PATH_KEYS: ReadonlyArray<readonly [string, PathKey]> = [
  ["INBOX", "inbox"],
  ["INDEX", "index"],
  ["INDEXPVT", "indexPvt"],
  ["INDEXCACHE", "indexCache"],
  ["CONTROL", "control"],
  ["ALT", "alt"],
  ["LAYOUT", "layout"],
  ["SUBSCRIPTIONS", "subscriptions"],
  ["DIRNAME", "dirName"],
  ["MAILBOXDIR", "mailboxDir"],
  ["VOLATILEDIR", "volatileDir"],
  ["LISTINDEX", "listIndex"],
];
const FLAG_KEYS: ReadonlyArray<readonly [string, FlagKey]> = [
  ["ALTNOCHECK", "altNoCheck"],
  ["ITERINDEX", "iterIndex"],
  ["NO-NOSELECT", "noNoselect"],
];

/**
 * Splits `data` at `:` the way Dovecot does: an empty element (from `::`)
 * glues the next element to the current one with a single `:`.
 */
function splitArgs(data: string): string[] {
  const parts = data.split(":");
  const args: string[] = [];
  let i = 0;
  while (i < parts.length) {
    let s = parts[i++];
    while (i < parts.length && parts[i] === "") {
      i++;
      if (i === parts.length) break; // "…:" at the end is ignored
      s += `:${parts[i++]}`;
    }
    args.push(s);
  }
  return args;
}

function fixPath(p: string): string {
  return p.length > 1 && p.endsWith("/") ? p.slice(0, -1) : p;
}

/** @returns the driver named by `location`'s prefix, or undefined when it has none. */
function splitDriver(location: string): { driver?: string; data: string } {
  const colon = location.indexOf(":");
  if (colon <= 0) return { data: location };
  const prefix = location.slice(0, colon);
  if (prefix.includes("/")) return { data: location };
  return { driver: prefix, data: location.slice(colon + 1) };
}

/**
 * Parses a mail_location string.
 * @returns the typed location; `driver` is undefined for a bare path (autodetect).
 * @throws InvalidArgumentError for an unknown driver or setting, a missing
 *   root before settings (`INBOX=` in root position), a bad `BROKENCHAR`, or
 *   `ITERINDEX` without an explicit `INDEX`.
 */
export function parseMailLocation(location: string): MailLocation {
  const { driver: rawDriver, data } = splitDriver(location);
  let driver: MailDriver | undefined;
  if (rawDriver !== undefined) {
    const lower = rawDriver.toLowerCase();
    if (!(MAIL_DRIVERS as readonly string[]).includes(lower)) {
      throw new InvalidArgumentError(`Unknown mail storage driver ${rawDriver}`);
    }
    driver = lower as MailDriver;
  }
  const result: { -readonly [K in keyof MailLocation]: MailLocation[K] } = { root: "" };
  if (driver !== undefined) result.driver = driver;
  if (data === "") return result;

  const args = splitArgs(data);
  result.root = fixPath(args[0]);
  if (result.root.startsWith("INBOX=")) throw new InvalidArgumentError(`Mail root directory not given: ${location}`);
  for (const arg of args.slice(1)) {
    if (arg === "UTF-8") {
      result.utf8 = true;
      continue;
    }
    const eq = arg.indexOf("=");
    const key = eq < 0 ? arg : arg.slice(0, eq);
    const value = eq < 0 ? "" : arg.slice(eq + 1);
    const flag = FLAG_KEYS.find(([k]) => k === key);
    if (flag) {
      result[flag[1]] = true;
      continue;
    }
    if (key === "BROKENCHAR") {
      if (value.length !== 1) throw new InvalidArgumentError("BROKENCHAR value must be a single character");
      result.brokenChar = value;
      continue;
    }
    if (key === "FULLDIRNAME") {
      result.fullDirName = true;
      result.dirName = fixPath(value);
      continue;
    }
    const pathKey = PATH_KEYS.find(([k]) => k === key);
    if (!pathKey) throw new InvalidArgumentError(`Unknown setting: ${key}`);
    result[pathKey[1]] = fixPath(value);
  }
  if (result.index === "MEMORY") result.index = "";
  if (result.iterIndex && !result.index) throw new InvalidArgumentError("ITERINDEX requires INDEX to be explicitly set");
  return result;
}

function escapeArg(value: string): string {
  return value.replaceAll(":", "::");
}

/**
 * Formats a location in canonical form (driver, root, then settings in a
 * fixed order; in-memory INDEX as `INDEX=MEMORY`). parseMailLocation() of the
 * result equals `loc`.
 * @throws InvalidArgumentError when a driverless location would read back
 *   with a driver (root without `/` followed by settings).
 */
export function formatMailLocation(loc: MailLocation): string {
  const args: string[] = [escapeArg(loc.root)];
  for (const [key, field] of PATH_KEYS) {
    let value = loc[field];
    if (value === undefined) continue;
    if (field === "dirName" && loc.fullDirName) continue;
    if (field === "index" && value === "") value = "MEMORY";
    args.push(`${key}=${escapeArg(value)}`);
  }
  if (loc.fullDirName) args.push(`FULLDIRNAME=${escapeArg(loc.dirName ?? "")}`);
  for (const [key, field] of FLAG_KEYS) if (loc[field]) args.push(key);
  if (loc.utf8) args.push("UTF-8");
  if (loc.brokenChar !== undefined) args.push(`BROKENCHAR=${escapeArg(loc.brokenChar)}`);
  const data = args.join(":");
  if (loc.driver !== undefined) return `${loc.driver}:${data}`;
  if (args.length > 1 && !loc.root.includes("/")) {
    throw new InvalidArgumentError(`driverless location with root "${loc.root}" needs a '/' in the root`);
  }
  return data;
}

/** @returns true when the location keeps indexes in memory only (`INDEX=MEMORY` or `INDEX=`). */
export function isIndexInMemory(loc: MailLocation): boolean {
  return loc.index === "";
}

/**
 * @returns `loc` with `~` and `~/…` in every path replaced by `home`.
 *   (`~user/…` needs a passwd lookup and is left as is.)
 */
export function expandLocationHome(loc: MailLocation, home: string): MailLocation {
  const expand = (p: string | undefined): string | undefined => {
    if (p === undefined) return undefined;
    if (p === "~") return home;
    if (p.startsWith("~/")) return home + p.slice(1);
    return p;
  };
  const out: { -readonly [K in keyof MailLocation]: MailLocation[K] } = { ...loc, root: expand(loc.root) ?? "" };
  for (const [, field] of PATH_KEYS) {
    if (loc[field] !== undefined && field !== "layout") out[field] = expand(loc[field]);
  }
  return out;
}
