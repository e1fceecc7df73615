/**
 * The mode a new file gets in a directory, as Dovecot's file_create_mode
 * follows the mailbox directory: the directory's read/write bits for group
 * and others, never less than 0600 for the owner. A 0700 mailbox directory
 * gives 0600 files; a 0770 shared one, 0660. (The umask still applies.)
 */
import * as fs from "node:fs";

/**
 * @returns the mode for a new file in `dir`.
 * @throws the stat error: a directory that cannot be statted cannot take the file either.
 */
export function newFileModeIn(dir: string): number {
  return (fs.statSync(dir).mode & 0o666) | 0o600;
}
