/**
 * Appending to `dovecot.mailbox.log` (dbox.md §9), the storage-wide log of
 * mailbox deletes, renames and (un)subscriptions that dsync reads. Only the
 * subscription records are written here.
 *
 * A record is 24 bytes written with one append-mode `write()`, no lock:
 * type (1 byte), 3 zero bytes, 16 bytes of id, the UNIX time as a big-endian
 * u32. For (un)subscriptions the id is the first 16 bytes of the SHA-1 of
 * the mailbox name as Dovecot shows it (UTF-8, namespace separator: "a.b"
 * under Maildir++), observed with doveadm 2.3.19. After an append that
 * leaves the file at 4096 bytes or more it becomes `dovecot.mailbox.log.2`.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { openCreating } from "../shared/file-mode.js";
import { makeDirs } from "../shared/make-dirs.js";

export const MAILBOX_LOG_FILE_NAME = "dovecot.mailbox.log";
export const MAILBOX_LOG_RECORD_SIZE = 24;
/** A file this large after an append is rotated to `.2`. */
export const MAILBOX_LOG_ROTATE_SIZE = 4096;

export const MailboxLogType = {
  DeleteMailbox: 1,
  DeleteDir: 2,
  Rename: 3,
  Subscribe: 4,
  Unsubscribe: 5,
} as const;
export type MailboxLogType = (typeof MailboxLogType)[keyof typeof MailboxLogType];

/** The id of records about a name rather than a mailbox: SHA-1 of the name, first 16 bytes. */
export function mailboxLogNameId(vname: string): Buffer {
  return createHash("sha1").update(vname, "utf8").digest().subarray(0, 16);
}

/** @returns one record's bytes. */
export function encodeMailboxLogRecord(type: MailboxLogType, id: Uint8Array, unixTime: number): Buffer {
  const rec = Buffer.alloc(MAILBOX_LOG_RECORD_SIZE);
  rec[0] = type;
  rec.set(id.subarray(0, 16), 4);
  rec.writeUInt32BE(unixTime >>> 0, 20);
  return rec;
}

/** Appends one record to `<dir>/dovecot.mailbox.log` (created if missing) and rotates it when full. */
export function appendMailboxLog(dir: string, type: MailboxLogType, id: Uint8Array, unixTime = Math.floor(Date.now() / 1000)): void {
  makeDirs(dir);
  const file = path.join(dir, MAILBOX_LOG_FILE_NAME);
  const fd = openCreating(file, fs.constants.O_WRONLY | fs.constants.O_APPEND);
  try {
    fs.writeSync(fd, encodeMailboxLogRecord(type, id, unixTime));
    if (fs.fstatSync(fd).size >= MAILBOX_LOG_ROTATE_SIZE) rotate(file);
  } finally {
    fs.closeSync(fd);
  }
}

function rotate(file: string): void {
  try {
    fs.renameSync(file, `${file}.2`);
  } catch (err) {
    // Another process rotated it first.
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}
