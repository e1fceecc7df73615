/**
 * Names of dbox files being written (dbox.md §1), as dbox_generate_tmp_filename():
 * `.temp.<unix secs>.P<pid>Q<counter>M<usecs>.<host name>`, created in the
 * destination directory and renamed to `u.<uid>` / `m.<file_id>` at commit.
 * The leading dot and the `.temp.` prefix matter: Dovecot's scans skip such
 * names and delete the ones older than 36 hours.
 */
import * as os from "node:os";
import { wallClockMs } from "../../shared/wall-clock.js";

/** Prefix of every dbox temp file name. */
export const DBOX_TEMP_FILE_PREFIX = ".temp.";

/** Per-process counter (Dovecot's create_count), starting at 0 like Dovecot's. */
let createCount = 0;

export interface TempNameParts {
  /** Wall-clock time in milliseconds (may have a fraction); default now. */
  readonly nowMs?: number;
  readonly pid?: number;
  readonly hostname?: string;
  /** Counter value; default the next value of this process's counter. */
  readonly counter?: number;
}

/** @returns a new temp file name (no directory), unique within this process. */
export function dboxTempFileName(parts: TempNameParts = {}): string {
  const ms = parts.nowMs ?? wallClockMs();
  const secs = Math.floor(ms / 1000);
  const usecs = Math.min(Math.round((ms - secs * 1000) * 1000), 999_999);
  const pid = parts.pid ?? process.pid;
  // A '/' in a host name would make the name a path.
  const host = (parts.hostname ?? os.hostname()).replaceAll("/", "_");
  const counter = parts.counter ?? createCount++;
  return `${DBOX_TEMP_FILE_PREFIX}${secs}.P${pid}Q${counter}M${usecs}.${host}`;
}

/** @returns true when `name` is a dbox temp file name. */
export function isDboxTempFileName(name: string): boolean {
  return name.startsWith(DBOX_TEMP_FILE_PREFIX);
}
