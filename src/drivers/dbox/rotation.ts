/**
 * When an mdbox save may append to an m.N file instead of starting a new one
 * (dbox.md §4.3). Checked against doveadm 2.3.19 with -o mdbox_rotate_size:
 * a file opened by an earlier transaction takes a mail while
 * `file size + mail size < rotate size`; a file this transaction already
 * appended to takes one more while `file size + mail size <= rotate size`.
 * "mail size" is the message's body size.
 */

/** Dovecot's default mdbox_rotate_size: 10M = 10 MiB. */
export const MDBOX_ROTATE_SIZE_DEFAULT = 10 * 1024 * 1024;

export interface RotationCheck {
  /** Current size of the m.N file (end of its last message). */
  readonly fileSizeBytes: number;
  /** Body size of the message to append. */
  readonly mailSizeBytes: number;
  /** mdbox_rotate_size; default MDBOX_ROTATE_SIZE_DEFAULT. */
  readonly rotateSizeBytes?: number;
  /** True when the current transaction already appended to this file. */
  readonly appendedInTransaction?: boolean;
}

/** @returns true when the message may be appended to the file under Dovecot's rotation rule. */
export function mdboxFileHasRoom(check: RotationCheck): boolean {
  return mdboxHasRoom(check.fileSizeBytes, check.mailSizeBytes, check.rotateSizeBytes ?? MDBOX_ROTATE_SIZE_DEFAULT, check.appendedInTransaction ?? false);
}

/** mdboxFileHasRoom() without an object per check (a purge checks each message it copies). */
export function mdboxHasRoom(fileSizeBytes: number, mailSizeBytes: number, rotateSizeBytes: number, appendedInTransaction: boolean): boolean {
  const after = fileSizeBytes + mailSizeBytes;
  return appendedInTransaction ? after <= rotateSizeBytes : after < rotateSizeBytes;
}
