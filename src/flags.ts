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

/** Splits IMAP flag names into system flag bits and keywords (case-insensitive for system flags). */
export function parseFlagNames(names: readonly string[]): { flags: number; keywords: string[] } {
  let flags = 0;
  const keywords: string[] = [];
  for (const name of names) {
    const system = SYSTEM_FLAG_NAMES.find(([, n]) => n.toLowerCase() === name.toLowerCase());
    if (system) flags |= system[0];
    else if (name.toLowerCase() !== "\\recent") keywords.push(name);
  }
  return { flags, keywords };
}
