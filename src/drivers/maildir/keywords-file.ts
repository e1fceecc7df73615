/**
 * `dovecot-keywords` (maildir-mbox.md A5): which keyword a file-name letter
 * stands for. One line per letter, `<index> <name>\n`, index 0..25 = `a`..`z`,
 * written in index order (observed: `0 $Label1\n1 foo\n`).
 *
 * Reading as Dovecot does: a line without a space is skipped; the index is
 * read like C atoi() (leading digits, none = 0); an index outside 0..25 or an
 * empty name is skipped; a later line for the same index replaces the earlier
 * one; a last line without LF (a torn write) is not read. A name is looked up
 * case-insensitively, the last line with that name winning.
 */
import { MAILDIR_MAX_KEYWORDS, maildirKeywordLetter } from "./filename.js";

/** Keyword names by letter index; holes are letters without a name. */
export type MaildirKeywords = ReadonlyArray<string | undefined>;

/** File name of the keywords file in a mailbox's control directory. */
export const MAILDIR_KEYWORDS_FILE_NAME = "dovecot-keywords";

function atoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d*)/.exec(s)!;
  const n = m[2] === "" ? 0 : Number.parseInt(m[2], 10);
  return m[1] === "-" ? -n : n;
}

/** @returns the keyword table in `text` (never throws: Dovecot never rejects this file). */
export function parseMaildirKeywords(text: string): MaildirKeywords {
  const names: Array<string | undefined> = [];
  const end = text.lastIndexOf("\n");
  if (end < 0) return names;
  for (const line of text.slice(0, end).split("\n")) {
    const space = line.indexOf(" ");
    if (space < 0) continue;
    const idx = atoi(line.slice(0, space));
    const name = line.slice(space + 1);
    if (idx < 0 || idx >= MAILDIR_MAX_KEYWORDS || name === "") continue;
    names[idx] = name;
  }
  return names;
}

/** @returns the file content Dovecot writes for `keywords` (holes skipped). */
export function formatMaildirKeywords(keywords: MaildirKeywords): string {
  let out = "";
  keywords.forEach((name, idx) => {
    if (name !== undefined && idx < MAILDIR_MAX_KEYWORDS) out += `${idx} ${name}\n`;
  });
  return out;
}

/** @returns the letter index of `name` (case-insensitive, last entry wins), or undefined. */
export function maildirKeywordIndex(keywords: MaildirKeywords, name: string): number | undefined {
  const lower = name.toLowerCase();
  for (let i = keywords.length - 1; i >= 0; i--) if (keywords[i]?.toLowerCase() === lower) return i;
  return undefined;
}

/**
 * @returns the keyword name of letter index `idx`; a letter without an entry
 *   reads as `unknown-<idx>`, the name Dovecot then gives it.
 */
export function maildirKeywordName(keywords: MaildirKeywords, idx: number): string {
  return keywords[idx] ?? `unknown-${idx}`;
}

/**
 * Adds `name` if missing, at the first free index (as Dovecot does).
 * @returns the (possibly new) table and the index, or undefined index when all
 *   26 letters are taken (the keyword then lives only in the index).
 */
export function addMaildirKeyword(keywords: MaildirKeywords, name: string): { keywords: MaildirKeywords; index: number | undefined } {
  const existing = maildirKeywordIndex(keywords, name);
  if (existing !== undefined) return { keywords, index: existing };
  let free = 0;
  while (free < keywords.length && keywords[free] !== undefined) free++;
  if (free >= MAILDIR_MAX_KEYWORDS) return { keywords, index: undefined };
  const next = [...keywords];
  next[free] = name;
  return { keywords: next, index: free };
}

/** @returns the keyword names that `keywordIndexes` (from a file name) stand for. */
export function maildirKeywordNames(keywords: MaildirKeywords, keywordIndexes: Iterable<number>): string[] {
  return [...keywordIndexes].map((i) => maildirKeywordName(keywords, i));
}

/** @returns the letters for keyword names that have one (others are skipped). */
export function maildirKeywordLetters(keywords: MaildirKeywords, names: Iterable<string>): string {
  let out = "";
  for (const n of names) {
    const i = maildirKeywordIndex(keywords, n);
    if (i !== undefined) out += maildirKeywordLetter(i);
  }
  return out;
}
