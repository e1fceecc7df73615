/**
 * Dovecot 2.3's IMAP subscriptions file (`<root>/subscriptions`, mbox
 * `<root>/.subscriptions`), as observed with doveadm 2.3.19:
 *
 * - Version 2 (what Dovecot writes when there is no file): the header
 *   `V\t2\n\n`, then one line per subscription, `\n`-terminated, hierarchy
 *   levels separated by TAB, each level as stored on disk (modified UTF-7,
 *   raw UTF-8 with the location's `UTF-8` flag). E.g. "Grüße/日本" is
 *   `Gr&APwA3w-e\t&ZeVnLA-\n`; a TAB inside a name is `&AAk-`, "&" is `&-`.
 * - Version 1 (no header; kept as version 1 when Dovecot rewrites it): the
 *   levels are separated by the namespace separator ("." for Maildir++).
 *   An existing empty file is version 1.
 *
 * Reading as Dovecot does: a last line without LF is not read (and is gone
 * after the next rewrite); a CR before the LF is dropped; a line with an
 * empty level (an empty line, a leading or doubled separator) is an invalid
 * entry, dropped on rewrite; one trailing separator is ignored; a name that
 * is not valid modified UTF-7 is taken as it is; the first level is INBOX
 * when it is INBOX in any case; duplicates are one subscription. Rewriting
 * keeps the other lines byte for byte.
 *
 * Unlike Dovecot, which reads anything, these are errors
 * (SubscriptionsCorruptedError): a NUL byte, bytes that are not UTF-8, and a
 * first line starting `V\t` that is not the version-2 header (another
 * version, or CRs in it): the file is then not one Dovecot wrote, and is
 * left as it is.
 */
import { InvalidArgumentError, SubscriptionsCorruptedError } from "../shared/errors.js";
import { decodeMutf7, encodeMutf7 } from "./mutf7.js";

/** How a storage spells mailbox names in its subscriptions file. */
export interface SubscriptionNaming {
  /** The namespace hierarchy separator ("." for Maildir++, "/" otherwise). */
  readonly separator: string;
  /** Levels are UTF-8 on disk (the location's `UTF-8`), else modified UTF-7. */
  readonly utf8: boolean;
}

/** One line of the file. */
export interface SubscriptionEntry {
  /** The line without LF (and without a CR before it). */
  readonly line: string;
  /** The mailbox it names ("/"-separated), or undefined for an entry Dovecot drops as invalid. */
  readonly name: string | undefined;
}

export interface SubscriptionsFile {
  readonly version: 1 | 2;
  readonly entries: readonly SubscriptionEntry[];
}

const HEADER_V2 = "V\t2\n\n";
const V2_SEPARATOR = "\t";

/** What a missing file reads as: no subscriptions; written as version 2. */
export const NO_SUBSCRIPTIONS: SubscriptionsFile = { version: 2, entries: [] };

function isInbox(level: string): boolean {
  return level.toUpperCase() === "INBOX";
}

/**
 * @returns the API name ("/"-separated, INBOX upper case) of a name given
 *   by a caller, after checking that the storage can name it.
 * @throws InvalidArgumentError for an empty name or level, a trailing "/",
 *   a level containing the namespace separator, NUL, or (UTF-8 names) a
 *   control character.
 */
export function normalizeSubscriptionName(name: string, naming: SubscriptionNaming): string {
  const levels = name.split("/");
  if (levels.some((l) => l === "")) throw new InvalidArgumentError(`Invalid mailbox name: ${JSON.stringify(name)}`);
  for (const level of levels) {
    if (naming.separator !== "/" && level.includes(naming.separator)) {
      throw new InvalidArgumentError(`Invalid mailbox name: a level contains the hierarchy separator "${naming.separator}": ${name}`);
    }
    if (level.includes("\0") || (naming.utf8 && /[\x00-\x1f\x7f]/.test(level))) {
      throw new InvalidArgumentError(`Invalid mailbox name: control character in ${JSON.stringify(name)}`);
    }
  }
  if (isInbox(levels[0])) levels[0] = "INBOX";
  return levels.join("/");
}

/** @returns the line that subscribes `name` (a normalized API name) in a file of `version`. */
export function encodeSubscriptionLine(name: string, naming: SubscriptionNaming, version: 1 | 2): string {
  const levels = name.split("/").map((l) => (naming.utf8 ? l : encodeMutf7(l)));
  return levels.join(version === 2 ? V2_SEPARATOR : naming.separator);
}

function decodeLevels(levels: string[], naming: SubscriptionNaming): string[] {
  if (naming.utf8) return levels;
  try {
    return levels.map(decodeMutf7);
  } catch (err) {
    if (err instanceof InvalidArgumentError) return levels; // not modified UTF-7: Dovecot shows the raw name
    throw err;
  }
}

/** @returns the API name a line stands for, or undefined when Dovecot drops it as invalid. */
function entryName(line: string, version: 1 | 2, naming: SubscriptionNaming): string | undefined {
  const sep = version === 2 ? V2_SEPARATOR : naming.separator;
  const body = line.endsWith(sep) ? line.slice(0, -sep.length) : line;
  const raw = body.split(sep);
  if (raw.some((l) => l === "")) return undefined;
  // Dovecot sees the name with the namespace separator between levels, so a
  // separator inside a level is one more level.
  const levels = decodeLevels(raw, naming).join(naming.separator).split(naming.separator);
  if (levels.some((l) => l === "")) return undefined;
  if (isInbox(levels[0])) levels[0] = "INBOX";
  return levels.join("/");
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses the file's bytes.
 * @param path the file, for errors.
 * @throws SubscriptionsCorruptedError (with the file and byte offset) for a
 *   NUL byte, bytes that are not UTF-8, or an unknown `V\t` header.
 */
export function parseSubscriptions(bytes: Uint8Array, naming: SubscriptionNaming, path: string): SubscriptionsFile {
  const nul = bytes.indexOf(0);
  if (nul >= 0) throw new SubscriptionsCorruptedError("NUL byte in the subscriptions file", { path, offset: nul });
  let version: 1 | 2 = 1;
  let pos = 0;
  const header = Buffer.from(HEADER_V2, "latin1");
  if (bytes.length >= header.length && header.equals(bytes.subarray(0, header.length))) {
    version = 2;
    pos = header.length;
  } else if (bytes[0] === 0x56 && bytes[1] === 0x09) {
    throw new SubscriptionsCorruptedError("unknown subscriptions file header (Dovecot 2.3 writes version 2: \"V\\t2\" and an empty line)", { path, offset: 0 });
  }
  const entries: SubscriptionEntry[] = [];
  for (;;) {
    const lf = bytes.indexOf(0x0a, pos);
    if (lf < 0) break; // a last line without LF is not read
    let line: string;
    try {
      line = utf8.decode(bytes.subarray(pos, lf));
    } catch (err) {
      // What a fatal TextDecoder throws for bytes that are not UTF-8.
      if ((err as { code?: unknown }).code !== "ERR_ENCODING_INVALID_ENCODED_DATA") throw err;
      throw new SubscriptionsCorruptedError("line is not UTF-8", { path, offset: pos });
    }
    if (line.endsWith("\r")) line = line.slice(0, -1);
    entries.push({ line, name: entryName(line, version, naming) });
    pos = lf + 1;
  }
  return { version, entries };
}

/** @returns the file's bytes: the header (version 2) and one line per entry Dovecot would keep. */
export function formatSubscriptions(file: SubscriptionsFile): Buffer {
  let text = file.version === 2 ? HEADER_V2 : "";
  for (const e of file.entries) if (e.name !== undefined) text += `${e.line}\n`;
  return Buffer.from(text, "utf8");
}

/** @returns the subscribed mailbox names, each once, in file order. */
export function subscribedNames(file: SubscriptionsFile): string[] {
  const out = new Set<string>();
  for (const e of file.entries) if (e.name !== undefined) out.add(e.name);
  return [...out];
}

/**
 * Subscribes (`subscribe` true) or unsubscribes normalized name `name`.
 * Unsubscribing removes every line that names the mailbox (Dovecot removes
 * only lines spelled exactly as it would write them).
 * @returns the new file, or undefined when nothing changes.
 */
export function setSubscribed(file: SubscriptionsFile, name: string, naming: SubscriptionNaming, subscribe: boolean): SubscriptionsFile | undefined {
  const present = file.entries.some((e) => e.name === name);
  if (present === subscribe) return undefined;
  if (subscribe) return { version: file.version, entries: [...file.entries, { line: encodeSubscriptionLine(name, naming, file.version), name }] };
  return { version: file.version, entries: file.entries.filter((e) => e.name !== name) };
}
