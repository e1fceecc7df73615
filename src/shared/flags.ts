import { InvalidArgumentError } from "./errors.js";

/** IMAP names of the system flag bits in an index record's flags byte. */
export const SYSTEM_FLAG_NAMES: ReadonlyArray<readonly [number, string]> = [
  [0x01, "\\Answered"],
  [0x02, "\\Flagged"],
  [0x04, "\\Deleted"],
  [0x08, "\\Seen"],
  [0x10, "\\Draft"],
];

export function flagNames(flags: number): string[] {
  return SYSTEM_FLAG_NAMES.filter(([bit]) => (flags & bit) !== 0).map(([, name]) => name);
}

/** IMAP atom-specials and controls: none may appear in a keyword (RFC 3501 flag-keyword = atom). */
const NOT_IN_KEYWORD = /[\x00-\x20\x7f(){%*"\\\]]/;
/** Dovecot refuses these ("8bit characters in keyword"): IMAP clients could not name them back. */
const EIGHT_BIT = /[^\x00-\x7f]/;

/**
 * Splits IMAP flag names into system flag bits and keywords (case-insensitive
 * for system flags). `\Recent` is ignored, as doveadm does.
 * @throws InvalidArgumentError for an unknown `\` flag or a keyword that is
 *   not an IMAP atom (Dovecot refuses both).
 */
export function parseFlagNames(names: readonly string[]): { flags: number; keywords: string[] } {
  let flags = 0;
  const keywords: string[] = [];
  for (const name of names) {
    const system = SYSTEM_FLAG_NAMES.find(([, n]) => n.toLowerCase() === name.toLowerCase());
    if (system) flags |= system[0];
    else if (name.toLowerCase() === "\\recent") continue;
    else if (name.startsWith("\\")) throw new InvalidArgumentError(`invalid system flag ${JSON.stringify(name)}`);
    else if (EIGHT_BIT.test(name)) throw new InvalidArgumentError(`invalid keyword ${JSON.stringify(name)}: 8bit characters in keyword`);
    else if (name === "" || NOT_IN_KEYWORD.test(name)) throw new InvalidArgumentError(`invalid keyword ${JSON.stringify(name)}`);
    else keywords.push(name);
  }
  return { flags, keywords };
}
