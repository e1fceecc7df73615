/**
 * Maildir++ folder naming (maildir-mbox.md A1), observed with doveadm 2.3.19:
 *
 * - INBOX is the root itself; mailbox `A.B` is the directory `<root>/.A.B`
 *   (hierarchy separator `.`); every non-INBOX mailbox holds an empty
 *   `maildirfolder` file.
 * - Names are modified UTF-7 on disk unless the location says `UTF-8`
 *   (`Weird&Name` → `.Weird&-Name`, `Ünï` → `.&ANw-n&AO8-`); `/` is refused.
 * - Deleting a mailbox first renames its directory to `..DOVECOT-TRASHED`
 *   (then empties and removes it), so a directory starting with `..` is never
 *   a mailbox: it is a deletion in progress.
 */
import { InvalidArgumentError } from "../../shared/errors.js";
import { decodeMutf7, encodeMutf7 } from "../mutf7.js";

/** Hierarchy separator of Maildir++. */
export const MAILDIR_SEPARATOR = ".";
/** Directory a mailbox is renamed to while Dovecot deletes it. */
export const MAILDIR_TRASH_DIR_NAME = "..DOVECOT-TRASHED";
/** Empty marker file in every non-INBOX Maildir++ mailbox. */
export const MAILDIR_FOLDER_MARKER = "maildirfolder";
/** The three directories of every Maildir. */
export const MAILDIR_SUBDIRS = ["cur", "new", "tmp"] as const;

export interface MaildirNamingOptions {
  /** Mailbox names on disk are UTF-8 (location `UTF-8`), not modified UTF-7. */
  readonly utf8?: boolean;
}

/** @returns true for the name INBOX (any case). */
export function isInboxName(name: string): boolean {
  return name.toUpperCase() === "INBOX";
}

/**
 * @returns the directory (relative to the root) holding mailbox `name`
 *   (`.`-separated): "" for INBOX, `.A.B` for `A.B`.
 * @throws InvalidArgumentError for an empty name, an empty hierarchy level,
 *   or a `/`.
 */
export function maildirMailboxDir(name: string, opts: MaildirNamingOptions = {}): string {
  if (isInboxName(name)) return "";
  if (name === "" || name.includes("/")) throw new InvalidArgumentError(`Invalid mailbox name: ${name}`);
  if (name.split(MAILDIR_SEPARATOR).some((part) => part === "")) {
    throw new InvalidArgumentError(`Invalid mailbox name (empty hierarchy level): ${name}`);
  }
  return `.${opts.utf8 ? name : encodeMutf7(name)}`;
}

/** What a directory entry of a Maildir++ root is. */
export type MaildirRootEntry =
  | { readonly kind: "mailbox"; readonly name: string }
  | { readonly kind: "deleting"; readonly dirName: string }
  | { readonly kind: "other" };

/**
 * Classifies an entry of the root directory.
 * @returns a mailbox (name decoded; names that are not valid modified UTF-7
 *   are shown raw, as Dovecot does), a deletion in progress (`..*`), or other.
 */
export function classifyMaildirRootEntry(entry: string, opts: MaildirNamingOptions = {}): MaildirRootEntry {
  if (entry.startsWith("..")) return entry === ".." ? { kind: "other" } : { kind: "deleting", dirName: entry };
  if (!entry.startsWith(".") || entry === ".") return { kind: "other" };
  const stored = entry.slice(1);
  if (opts.utf8) return { kind: "mailbox", name: stored };
  try {
    return { kind: "mailbox", name: decodeMutf7(stored) };
  } catch (err) {
    // Not modified UTF-7: the raw name, as Dovecot shows it.
    if (err instanceof InvalidArgumentError) return { kind: "mailbox", name: stored };
    throw err;
  }
}

/** @returns the parent of `name` (`A` for `A.B`), or undefined at the top. */
export function maildirParentName(name: string): string | undefined {
  const dot = name.lastIndexOf(MAILDIR_SEPARATOR);
  return dot < 0 ? undefined : name.slice(0, dot);
}
