/**
 * `dovecot-uidvalidity` (dbox.md §5): how a storage root hands out the
 * UIDVALIDITY of new mailboxes without a lock.
 *
 * - `<dir>/dovecot-uidvalidity` holds the last value handed out, 8 lowercase
 *   hex digits, no newline (written with pwrite at offset 0).
 * - One empty marker `<dir>/dovecot-uidvalidity.<8 hex>` (mode 0444) is the
 *   real counter: renaming `.<cur>` to `.<cur+1>` succeeds for exactly one of
 *   several racing processes, and the winner owns cur+1.
 *
 * Observed with doveadm 2.3.19: a valid main file whose marker exists gives
 * cur+1 whatever the clock says; otherwise the directory is scanned, markers
 * below the highest are deleted and the highest is advanced; with no marker
 * at all, the current time is used (and a marker created), even when the main
 * file held a larger value.
 *
 * Every step is a small synchronous call, as writeMain's already were: a
 * promise-based read and rename were four trips through libuv's thread pool
 * per new mailbox (a rebuild's recreated one too), each a wait for a thread
 * on a busy machine, for work the thread then did in microseconds.
 */
import * as fs from "node:fs";
import { constants } from "node:fs";
import * as path from "node:path";
import { MailstoreError } from "../../shared/errors.js";
import { createNewFile, newFilePermissionsIn, openCreating } from "../../shared/file-mode.js";

/** File name of the counter's main file. */
export const UIDVALIDITY_FILE_NAME = "dovecot-uidvalidity";

const MARKER_RE = /^dovecot-uidvalidity\.([0-9a-fA-F]{8})$/;
const MAX_ATTEMPTS = 10;

function hex8(value: number): string {
  return value.toString(16).padStart(8, "0");
}

function markerPath(dir: string, value: number): string {
  return path.join(dir, `${UIDVALIDITY_FILE_NAME}.${hex8(value)}`);
}

function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === code;
}

/**
 * Reads the main file.
 * @returns the last UIDVALIDITY handed out, or undefined when the file is
 *   missing, empty, not 1 to 8 hex digits, or 0.
 */
export async function readUidValidity(dir: string): Promise<number | undefined> {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, UIDVALIDITY_FILE_NAME), "latin1");
  } catch (err) {
    if (isErrno(err, "ENOENT")) return undefined;
    throw err;
  }
  if (!/^[0-9a-fA-F]{1,8}$/.test(text)) return undefined;
  const value = parseInt(text, 16);
  return value === 0 ? undefined : value;
}

/** Writes the main file: 8 hex digits at offset 0, without truncating (as Dovecot's pwrite). */
function writeMain(dir: string, value: number): void {
  const fd = openCreating(path.join(dir, UIDVALIDITY_FILE_NAME), constants.O_RDWR);
  try {
    fs.writeSync(fd, Buffer.from(hex8(value), "latin1"), 0, 8, 0);
  } finally {
    fs.closeSync(fd);
  }
}

/** An empty 0444 marker file (with the directory's group, as every new file). @throws EEXIST when it is there. */
function createMarker(dir: string, value: number): void {
  fs.closeSync(createNewFile(markerPath(dir, value), constants.O_WRONLY, { ...newFilePermissionsIn(dir), mode: 0o444 }));
}

/** Renames marker cur to cur+1 (0 skipped). @returns cur+1, or undefined if someone else moved the marker. */
function tryAdvance(dir: string, cur: number): number | undefined {
  const next = cur >= 0xffffffff ? 1 : cur + 1;
  try {
    fs.renameSync(markerPath(dir, cur), markerPath(dir, next));
  } catch (err) {
    if (isErrno(err, "ENOENT")) return undefined;
    throw err;
  }
  writeMain(dir, next);
  return next;
}

/** @returns the marker values in `dir`, ascending. */
function scanMarkers(dir: string): number[] {
  const values: number[] = [];
  for (const name of fs.readdirSync(dir)) {
    const m = MARKER_RE.exec(name);
    if (m) values.push(parseInt(m[1], 16));
  }
  return values.sort((a, b) => a - b);
}

/**
 * Allocates a UIDVALIDITY for a new mailbox, compatible with Dovecot
 * processes allocating from the same directory at the same time.
 * @param nowSecs the clock, used only when no marker exists.
 * @returns the new value (never 0).
 * @throws MailstoreError (LOCK_TIMEOUT) when other processes keep winning the
 *   race, or the fs error when the directory is not writable.
 */
export async function nextUidValidity(dir: string, nowSecs: number = Math.floor(Date.now() / 1000)): Promise<number> {
  const cur = await readUidValidity(dir);
  if (cur !== undefined) {
    const next = tryAdvance(dir, cur);
    if (next !== undefined) return next;
  }
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const markers = scanMarkers(dir);
    if (markers.length === 0) {
      const value = nowSecs >>> 0 === 0 ? 1 : nowSecs >>> 0;
      try {
        createMarker(dir, value);
      } catch (err) {
        if (isErrno(err, "EEXIST")) continue; // another process created it first: rescan
        throw err;
      }
      writeMain(dir, value);
      return value;
    }
    const highest = markers[markers.length - 1];
    for (const v of markers.slice(0, -1)) {
      try {
        fs.unlinkSync(markerPath(dir, v));
      } catch (err) {
        // Removed by a racing process already.
        if (!isErrno(err, "ENOENT")) throw err;
      }
    }
    const next = tryAdvance(dir, highest);
    if (next !== undefined) return next;
  }
  throw new MailstoreError("LOCK_TIMEOUT", `could not allocate a UIDVALIDITY after ${MAX_ATTEMPTS} attempts`, { path: dir });
}
